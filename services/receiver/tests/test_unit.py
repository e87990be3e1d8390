"""Unit tests (worker_factory: dependencies replaced by mocks, no broker)."""

import pytest
from nameko.testing.services import worker_factory

from receiver.service import ReceiverService, ReceiverSettings

pytestmark = pytest.mark.unit


def test_receive_event_answers_like_the_article():
    service = worker_factory(ReceiverService, settings=ReceiverSettings())

    assert (
        service.receive_event({"message": "Hello World!!"}) == "Event Received: {'message': 'Hello World!!'}"
    )


def test_events_without_an_id_leave_no_receipt():
    service = worker_factory(ReceiverService, settings=ReceiverSettings())

    service.receive_event("no id here")

    service.receipts.session.begin.assert_not_called()
