"""The transactional outbox: a message stored is never left without its event."""

import uuid
from datetime import timedelta
from unittest.mock import patch

import pytest
import sqlalchemy
from kombu import Connection, Queue
from nameko.standalone.events import get_event_exchange
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.orm import Session

import message.messages
from message.messages import Base, OutboxEvent, now, prune_sent
from message.service import MessageService
from testkit.processes import wait_for


def test_an_event_whose_dispatch_fails_after_the_commit_still_gets_out(container_factory, service_config):
    config = service_config("message")
    listener = Queue(
        f"outbox-test-{uuid.uuid4().hex[:8]}",
        exchange=get_event_exchange("message_service", config),
        routing_key="heavy_payload_event",
        auto_delete=True,
    )
    real_dispatch, failed = message.messages.dispatch_with_trace_context, []

    def first_dispatch_fails(*args):
        # the first publish of the event, whichever relay makes it (the request's or the timer's)
        if not failed:
            failed.append(True)
            raise ConnectionError("the broker went away between the commit and the dispatch")
        return real_dispatch(*args)

    with Connection(config["AMQP_URI"]) as connection:
        bound = listener.bind(connection.default_channel)
        bound.declare()
        with patch.object(message.messages, "dispatch_with_trace_context", first_dispatch_fails):
            container_factory(MessageService, config).start()
            with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
                reply = cluster_rpc.message_service.receive_message({"message": "hi", "payload": {"n": 1}})

            assert reply["status"] == "pending"  # stored, whatever became of its dispatch
            event = wait_for(lambda: bound.get(no_ack=True), message="the event, sent by a later relay")

    assert failed == [True]
    assert event.decode() == {"message_id": reply["id"], "payload": {"n": 1}}


@pytest.fixture
def fresh_amqp_uri(rabbit_admin, amqp_uri):
    """A vhost where no queue is bound to message_service's events (the run's shared vhost may have
    time_consuming_service's queue from other tests)."""
    name = f"{amqp_uri.rsplit('/', 1)[1]}_{uuid.uuid4().hex[:6]}"
    rabbit_admin.create_vhost(name)
    yield amqp_uri.rsplit("/", 1)[0] + "/" + name
    rabbit_admin.delete_vhost(name)


def unroutable() -> float:
    return (
        REGISTRY.get_sample_value("message_outbox_unroutable_total", {"event_type": "heavy_payload_event"})
        or 0
    )


def test_an_event_no_queue_receives_stays_unsent_until_one_is_bound(
    container_factory, service_config, fresh_amqp_uri
):
    config = service_config("message", AMQP_URI=fresh_amqp_uri)
    engine = sqlalchemy.create_engine(config["DATABASE_URL"])
    container_factory(MessageService, config).start()
    before = unroutable()
    with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
        reply = cluster_rpc.message_service.receive_message(
            {"message": "nobody listens", "payload": {"n": 2}}
        )
    # Tried on the request path and by the timer at least once: counted, and not marked sent.
    wait_for(lambda: unroutable() >= before + 2, message="two relays that reached no queue")
    with engine.connect() as connection:
        unsent = connection.execute(
            sqlalchemy.text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        ).scalar()
    # The timer counts the backlog after its relay: the metrics show the event waiting.
    wait_for(lambda: backlog() == (1, True), message="the backlog counted by the timer")

    listener = Queue(
        "late-consumer",
        exchange=get_event_exchange("message_service", config),
        routing_key="heavy_payload_event",
        auto_delete=True,
    )
    with Connection(config["AMQP_URI"]) as connection:
        bound = listener.bind(connection.default_channel)
        bound.declare()
        event = wait_for(lambda: bound.get(no_ack=True), message="the event, once a queue is bound")

    assert unsent == 1
    assert event.decode() == {"message_id": reply["id"], "payload": {"n": 2}}
    wait_for(lambda: backlog() == (0, False), message="an empty backlog counted after the relay")
    engine.dispose()


def backlog() -> tuple[float, bool]:
    """message_outbox_unsent, and whether message_outbox_oldest_unsent_age_seconds is above 0."""
    unsent = REGISTRY.get_sample_value("message_outbox_unsent")
    return unsent, REGISTRY.get_sample_value("message_outbox_oldest_unsent_age_seconds") > 0


def test_pruning_removes_sent_events_older_than_the_retention_only(postgres):
    engine = sqlalchemy.create_engine(postgres())
    Base.metadata.create_all(engine)
    long_ago, lately = now() - timedelta(hours=48), now() - timedelta(hours=1)
    with Session(engine) as session, session.begin():
        session.add_all(
            [
                OutboxEvent(event_type="sent-long-ago", payload={}, created_at=long_ago, sent_at=long_ago),
                OutboxEvent(event_type="sent-lately", payload={}, created_at=long_ago, sent_at=lately),
                OutboxEvent(event_type="never-sent", payload={}, created_at=long_ago),
            ]
        )

    with Session(engine) as session:
        pruned = prune_sent(session, timedelta(hours=24))
        left = session.scalars(select(OutboxEvent.event_type).order_by(OutboxEvent.id)).all()

    assert pruned == 1
    assert left == ["sent-lately", "never-sent"]
    engine.dispose()


def test_the_service_prunes_with_its_retention_setting(container_factory, service_config):
    config = service_config("message", OUTBOX_RETENTION_HOURS=1)
    container = container_factory(MessageService, config)
    container.start()
    engine = sqlalchemy.create_engine(config["DATABASE_URL"])
    with Session(engine) as session, session.begin():
        for event_type, hours in [("two-hours-ago", 2), ("half-an-hour-ago", 0.5)]:
            sent = now() - timedelta(hours=hours)
            session.add(OutboxEvent(event_type=event_type, payload={}, created_at=sent, sent_at=sent))

    with entrypoint_hook(container, "prune_outbox") as prune_outbox:
        prune_outbox()

    with Session(engine) as session:
        assert session.scalars(select(OutboxEvent.event_type)).all() == ["half-an-hour-ago"]
    engine.dispose()
