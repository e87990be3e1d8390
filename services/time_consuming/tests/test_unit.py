"""Unit tests (worker_factory: dependencies replaced by mocks, no broker)."""

from unittest.mock import patch

import pytest
from nameko.testing.services import worker_factory

from time_consuming.jobs import Job
from time_consuming.service import TimeConsumingService

pytestmark = pytest.mark.unit


def test_a_handled_event_reports_its_outcome_to_message_service():
    service = worker_factory(TimeConsumingService)
    job = Job(message_id="m-1", state="processing", attempts=1)

    with patch("time_consuming.service.claim_job") as claim_job:
        claim_job.return_value.__enter__.return_value = job
        service.time_consuming_event_handler({"message_id": "m-1", "payload": {}})

    service.dispatch.assert_called_once_with("payload_processed", {"message_id": "m-1", "status": "done"})


def test_a_redelivered_event_that_already_finished_does_nothing():
    service = worker_factory(TimeConsumingService)

    with patch("time_consuming.service.claim_job") as claim_job:
        claim_job.return_value.__enter__.return_value = None
        service.time_consuming_event_handler({"message_id": "m-1", "payload": {}})

    service.dispatch.assert_not_called()
