"""The transactional outbox: a message stored is never left without its event."""

import sys
import uuid
from unittest.mock import patch

from kombu import Connection, Queue
from nameko.standalone.events import get_event_exchange
from nameko.standalone.rpc import ClusterRpcProxy

import message.service
from message.service import MessageService
from tests.support import wait_for


def test_an_event_whose_dispatch_fails_after_the_commit_still_gets_out(container_factory, service_config):
    config = service_config("message")
    listener = Queue(
        f"outbox-test-{uuid.uuid4().hex[:8]}",
        exchange=get_event_exchange("message_service", config),
        routing_key="heavy_payload_event",
        auto_delete=True,
    )
    real_relay, failed = message.service.relay, []

    def relay_failing_after_the_commit(session, dispatch):
        if sys._getframe(2).f_code.co_name == "receive_message":  # its relay, not the timer's
            failed.append(True)
            raise ConnectionError("the broker went away between the commit and the dispatch")
        return real_relay(session, dispatch)

    with Connection(config["AMQP_URI"]) as connection:
        bound = listener.bind(connection.default_channel)
        bound.declare()
        with patch.object(message.service, "relay", relay_failing_after_the_commit):
            container_factory(MessageService, config).start()
            with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
                reply = cluster_rpc.message_service.receive_message({"message": "hi", "payload": {"n": 1}})

            assert reply["status"] == "pending" and failed == [True]  # stored; its dispatch failed
            event = wait_for(lambda: bound.get(no_ack=True), message="the event, sent by the timer relay")

    assert event.decode() == {"message_id": reply["id"], "payload": {"n": 1}}
