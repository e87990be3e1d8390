"""The message domain (`message.messages`) on SQLite: intake, outbox, outcomes. No broker, no server."""

import gc
from datetime import timedelta

import pytest
from nameko.amqp.publish import UndeliverableMessage

from common.errors import Conflict, InvalidInput, NotFound
from common.schemas import NewMessage
from message.messages import (
    Base,
    OutboxEvent,
    claim_stuck_messages,
    get_message,
    prune_sent,
    record_outcome,
    relay,
    store_message,
)

pytestmark = pytest.mark.unit


@pytest.fixture
def db(sqlite_sessions):
    return sqlite_sessions(Base.metadata)


def outbox(session) -> list[OutboxEvent]:
    return list(session.query(OutboxEvent).order_by(OutboxEvent.id))


def test_a_message_with_a_payload_is_stored_pending_with_its_event_in_the_outbox(db):
    message = store_message(db(), NewMessage(message="hi", payload={"n": 1}))

    assert get_message(db(), message.id).status == "pending"
    [event] = outbox(db())
    assert (event.event_type, event.payload["message_id"], event.sent_at) == (
        "heavy_payload_event",
        message.id,
        None,
    )


def test_a_message_without_a_payload_is_received_and_sends_nothing(db):
    message = store_message(db(), NewMessage(message="hi"))

    assert get_message(db(), message.id).status == "received"
    assert outbox(db()) == []


def test_each_operations_session_is_closed_before_the_next_so_a_read_holds_no_lock(db):
    # with the garbage collector off, a session dropped but not closed keeps its read transaction,
    # and with it SQLite's write lock (BEGIN IMMEDIATE): the next operation would be refused
    gc.disable()
    try:
        message = store_message(db(), NewMessage(message="hi"))
        assert get_message(db(), message.id).status == "received"
        assert outbox(db()) == []
    finally:
        gc.enable()


def test_one_request_key_stores_one_message_and_another_body_with_it_is_a_conflict(db):
    first = store_message(db(), NewMessage(message="hi", payload=1, idempotency_key="k"))
    again = store_message(db(), NewMessage(message="hi", payload=1, idempotency_key="k"))
    redelivered = store_message(db(), NewMessage(message="rpc"), correlation_id="c-1")
    redelivered_again = store_message(db(), NewMessage(message="rpc"), correlation_id="c-1")

    assert again.id == first.id and redelivered_again.id == redelivered.id
    assert len(outbox(db())) == 1
    with pytest.raises(Conflict):
        store_message(db(), NewMessage(message="other", idempotency_key="k"))


def test_relay_sends_each_unsent_event_once_in_order_and_keeps_what_reached_no_queue(db):
    ids = [store_message(db(), NewMessage(message=f"m{i}", payload=i)).id for i in range(3)]
    sent, refused = [], {ids[1]}

    def dispatch(event_type, payload):
        if payload["message_id"] in refused:
            raise UndeliverableMessage()
        sent.append(payload["message_id"])

    assert relay(db(), dispatch) == 2
    assert relay(db(), dispatch) == 0  # nothing new: sent ones are not sent again
    refused.clear()
    assert relay(db(), dispatch) == 1  # the unroutable one, once its queue exists

    assert sent == [ids[0], ids[2], ids[1]]


def test_pruning_removes_sent_events_only(db):
    store_message(db(), NewMessage(message="sent", payload=1))
    relay(db(), lambda event_type, payload: None)
    store_message(db(), NewMessage(message="unsent", payload=2))

    assert prune_sent(db(), older_than=timedelta(0)) == 1
    assert [event.payload["payload"] for event in outbox(db())] == [2]


def test_outcomes_only_move_a_message_forward(db):
    done_first = store_message(db(), NewMessage(message="a", payload=1)).id
    failed_first = store_message(db(), NewMessage(message="b", payload=2)).id

    moves = [
        record_outcome(db(), done_first, "done"),
        record_outcome(db(), done_first, "failed", "an earlier attempt's report"),
        record_outcome(db(), failed_first, "failed", "webhook refused"),
        record_outcome(db(), failed_first, "done"),
    ]

    assert moves == [True, False, True, True]
    assert [get_message(db(), id_).status for id_ in (done_first, failed_first)] == ["done", "done"]
    with pytest.raises(InvalidInput):
        record_outcome(db(), done_first, "pending")


def test_an_outcome_for_an_unknown_message_is_not_found(db):
    with pytest.raises(NotFound):
        record_outcome(db(), "9b2f6c1e-0000-4000-8000-000000000000", "done")


def test_a_stuck_message_is_claimed_once_per_period(db):
    stuck = store_message(db(), NewMessage(message="stuck", payload=1)).id
    store_message(db(), NewMessage(message="no payload"))

    first = [message.id for message in claim_stuck_messages(db(), older_than=timedelta(0))]
    second = claim_stuck_messages(db(), older_than=timedelta(hours=1))

    assert (first, second) == ([stuck], [])
