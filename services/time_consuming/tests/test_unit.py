"""Unit tests (worker_factory: dependencies replaced by mocks, no broker)."""

from unittest.mock import patch

import pytest
from nameko.testing.services import worker_factory

from time_consuming.service import TimeConsumingService, TimeConsumingSettings
from time_consuming.work import GaveUp, Outcome

pytestmark = pytest.mark.unit


def test_a_handled_event_reports_its_outcome_to_message_service():
    service = worker_factory(TimeConsumingService, settings=TimeConsumingSettings())

    with patch("time_consuming.service.process", return_value=Outcome("m-1", "done")):
        service.time_consuming_event_handler({"message_id": "m-1", "payload": {}})

    service.dispatch.assert_called_once_with(
        "payload_processed", {"message_id": "m-1", "status": "done", "reason": None}
    )


def test_a_failure_is_reported_then_raised_to_be_parked():
    service = worker_factory(TimeConsumingService, settings=TimeConsumingSettings())
    event = {"message_id": "m-1", "payload": {}}

    with (
        patch("time_consuming.service.process", return_value=Outcome("m-1", "failed", "HTTP 404")),
        pytest.raises(GaveUp, match="HTTP 404"),
    ):
        service.time_consuming_event_handler(event)

    service.dispatch.assert_called_once_with(
        "payload_processed", {"message_id": "m-1", "status": "failed", "reason": "HTTP 404"}
    )
