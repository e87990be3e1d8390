"""message_service and time_consuming_service together on the real broker: the article's pub-sub."""

import pytest
import sqlalchemy
from nameko.standalone.rpc import ClusterRpcProxy

from message.service import MessageService
from testkit.processes import wait_for
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


def test_a_lost_outcome_report_is_recovered_by_redispatch(runner_factory, service_config):
    """The cron job's path: a message left `pending` although its job finished (the report was lost)."""
    message_config = service_config("message", WEB_SERVER_ADDRESS="127.0.0.1:0")
    runner_factory(message_config, MessageService).start()
    runner_factory(service_config("time_consuming"), TimeConsumingService).start()
    with ClusterRpcProxy(message_config, timeout=10) as rpc:
        stored = rpc.message_service.receive_message({"message": "heavy", "payload": [1]})
        wait_for(lambda: rpc.message_service.get_message(stored["id"])["status"] == "done", message="done")
        engine = sqlalchemy.create_engine(message_config["DATABASE_URL"])
        with engine.begin() as connection:
            connection.execute(
                sqlalchemy.text("UPDATE messages SET status = 'pending' WHERE id = :id"), {"id": stored["id"]}
            )
        engine.dispose()

        assert rpc.message_service.redispatch_stuck(0) == [stored["id"]]
        wait_for(
            lambda: rpc.message_service.get_message(stored["id"])["status"] == "done", message="done again"
        )
        assert rpc.time_consuming_service.get_job(stored["id"])["attempts"] == 1  # reported, not redone
