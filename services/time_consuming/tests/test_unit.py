"""Unit tests (worker_factory: dependencies replaced by mocks, no broker)."""

from unittest.mock import patch

import pytest
from nameko.testing.services import worker_factory

from time_consuming.service import TimeConsumingService
from time_consuming.work import Outcome

pytestmark = pytest.mark.unit


def test_a_handled_event_reports_its_outcome_to_message_service():
    service = worker_factory(TimeConsumingService)

    with patch("time_consuming.service.process", return_value=Outcome("m-1", "done")):
        service.time_consuming_event_handler({"message_id": "m-1", "payload": {}})

    service.dispatch.assert_called_once_with(
        "payload_processed", {"message_id": "m-1", "status": "done", "reason": None}
    )
    service.dead_letters.park.assert_not_called()


def test_a_failure_is_dead_lettered_and_reported():
    service = worker_factory(TimeConsumingService)
    event = {"message_id": "m-1", "payload": {}}

    with patch("time_consuming.service.process", return_value=Outcome("m-1", "failed", "HTTP 404")):
        service.time_consuming_event_handler(event)

    service.dead_letters.park.assert_called_once_with(
        event, "HTTP 404", "message_service", "heavy_payload_event"
    )
    service.dispatch.assert_called_once_with(
        "payload_processed", {"message_id": "m-1", "status": "failed", "reason": "HTTP 404"}
    )
