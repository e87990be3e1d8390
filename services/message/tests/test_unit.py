"""Unit tests (worker_factory: dependencies replaced by mocks, no broker)."""

import uuid
from unittest.mock import patch

import pytest
from nameko.testing.services import worker_factory

from common.errors import InvalidInput
from message.service import MessageService

pytestmark = pytest.mark.unit


def make_worker():
    # No RPC request behind the call (a mock's id would look like a request seen before).
    return worker_factory(MessageService, request_id=None)


@pytest.mark.parametrize(
    "event",
    [
        "not a dict",
        {},
        {"message": 42},
        {"message": ""},
        {"message": "hi", "unexpected": 1},
    ],
)
def test_receive_message_rejects_bad_input_before_touching_anything(event):
    service = make_worker()

    with pytest.raises(InvalidInput):
        service.receive_message(event)

    service.db.session.add.assert_not_called()
    service.outbox.assert_not_called()


def test_a_message_without_payload_dispatches_nothing():
    service = make_worker()

    reply = service.receive_message({"message": "Hello World!!"})

    assert reply["status"] == "received"
    service.outbox.assert_not_called()


def test_a_message_with_payload_is_handed_to_time_consuming_service():
    service = make_worker()

    with patch("message.service.relay") as relay:
        reply = service.receive_message({"message": "Hello", "payload": {"size": "heavy"}})

    assert reply["status"] == "pending"
    assert uuid.UUID(reply["id"])
    outbox_event = service.db.session.add.call_args_list[-1].args[0]  # in the message's transaction
    assert (outbox_event.event_type, outbox_event.payload) == (
        "heavy_payload_event",
        {"message_id": reply["id"], "payload": {"size": "heavy"}},
    )
    relay.assert_called_once_with(service.db.session, service.outbox)  # sent right after the commit
