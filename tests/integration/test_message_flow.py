"""message_service and time_consuming_service together on the real broker: the article's pub-sub."""

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from message.service import MessageService
from tests.support import wait_for
from time_consuming.service import TimeConsumingService


@pytest.fixture
def cluster_rpc(runner_factory, service_config):
    message_config = service_config("message", WEB_SERVER_ADDRESS="127.0.0.1:0")
    runner_factory(message_config, MessageService).start()
    runner_factory(service_config("time_consuming"), TimeConsumingService).start()
    with ClusterRpcProxy(message_config, timeout=10) as proxy:
        yield proxy


def test_a_payload_travels_by_event_and_the_message_ends_done(cluster_rpc):
    stored = cluster_rpc.message_service.receive_message(
        {"message": "heavy", "payload": {"blob": "x" * 1000}}
    )

    final = wait_for(
        lambda: (
            (message := cluster_rpc.message_service.get_message(stored["id"]))["status"] == "done" and message
        ),
        message="status done",
    )

    assert stored["status"] == "pending"
    assert final["reason"] is None
    assert cluster_rpc.time_consuming_service.get_job(stored["id"])["state"] == "notified"


def test_a_message_without_payload_makes_no_job(cluster_rpc):
    stored = cluster_rpc.message_service.receive_message({"message": "light", "payload": None})
    heavy = cluster_rpc.message_service.receive_message({"message": "heavy", "payload": [1]})
    wait_for(lambda: cluster_rpc.time_consuming_service.get_job(heavy["id"]), message="the heavy job")

    assert stored["status"] == "received"
    assert cluster_rpc.time_consuming_service.get_job(stored["id"]) is None
