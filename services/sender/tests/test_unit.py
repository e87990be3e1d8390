"""Unit tests (worker_factory: dependencies replaced by mocks, no broker)."""

import pytest
from nameko.testing.services import worker_factory

from sender.service import SenderService

pytestmark = pytest.mark.unit


def test_send_event_forwards_to_the_receiver_and_returns_its_reply():
    service = worker_factory(SenderService)
    service.receiver_service.receive_event.return_value = "Event Received: hi"

    assert service.send_event("hi") == "Event Received: hi"
    service.receiver_service.receive_event.assert_called_once_with("hi")
