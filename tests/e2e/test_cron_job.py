"""The cron job (`redispatch-stuck`, a ClusterRpcProxy client with a timeout) against the running stack."""

import os
import subprocess
import uuid

import pytest
from kombu import Connection, Exchange, Queue
from nameko.standalone.rpc import ClusterRpcProxy

from common.topology import rpc_queue
from testkit.processes import BIN, ROOT, wait_for
from testkit.rabbit import HEAVY_PAYLOAD_QUEUE
from tests.ops.logs import waiting_in


@pytest.fixture
def fresh_vhost(rabbit_admin, vhost):
    """A vhost where no service has ever run: no queues, so events dispatched there are dropped."""
    name = f"{vhost}_{uuid.uuid4().hex[:6]}"
    rabbit_admin.create_vhost(name)
    yield f"amqp://guest:guest@localhost:5672/{name}"
    rabbit_admin.delete_vhost(name)


def run(command: list, amqp_uri: str, *arguments) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / command[0], *command[1:], *arguments],
        cwd=ROOT,
        env={**os.environ, "AMQP_URI": amqp_uri, "PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_message_stuck_in_pending_is_handed_over_again_and_ends_done(
    fresh_vhost, local_stack, rabbit_admin
):
    local_stack("message", env={"AMQP_URI": fresh_vhost})
    # The stack's topology job declared time_consuming's queue, so the outbox's event is routed and
    # marked sent; then the event is lost (purged here; a queue deleted or a broker's disk lost
    # would do the same), and the message is stuck in `pending`.
    vhost = fresh_vhost.rsplit("/", 1)[1]
    handler_queue = HEAVY_PAYLOAD_QUEUE
    with ClusterRpcProxy({"AMQP_URI": fresh_vhost}, timeout=10) as cluster_rpc:
        stuck = cluster_rpc.message_service.receive_message({"message": "stuck", "payload": {"n": 1}})
        wait_for(lambda: waiting_in(fresh_vhost, handler_queue) == 1, message="the event in its queue")
        rabbit_admin.request("DELETE", f"queues/{vhost}/{handler_queue}/contents")
        local_stack("time_consuming", env={"AMQP_URI": fresh_vhost})

        first = run(["redispatch-stuck"], fresh_vhost, "--older-than-minutes", "0")
        wait_for(
            lambda: cluster_rpc.message_service.get_message(stuck["id"])["status"] == "done",
            message="the stuck message done",
        )
        second = run(["redispatch-stuck"], fresh_vhost, "--older-than-minutes", "0")

    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "redispatch-stuck: 1 message(s) pending for more than 0 min handed to time_consuming_service again",
        f"  {stuck['id']}",
    ]
    assert second.stdout.startswith("redispatch-stuck: 0 message(s)")


def test_stack_cron_runs_the_compose_cron_services_jobs_once(local_stack, amqp_uri):
    local_stack("message")

    result = run(["stack", "cron"], amqp_uri)

    assert result.returncode == 0, result.stderr
    assert "stack: running cron job redispatch-stuck: redispatch-stuck" in result.stdout
    assert "redispatch-stuck: 0 message(s) pending for more than 10 min" in result.stdout


def test_broker_unavailable_is_a_clear_error_and_a_non_zero_exit():
    result = run(["redispatch-stuck"], "amqp://guest:guest@127.0.0.1:1/")

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "redispatch-stuck: cannot use the broker at amqp://127.0.0.1:1/: [Errno 111] Connection refused"
    )


def test_message_service_not_running_is_a_clear_error_and_a_non_zero_exit(fresh_vhost):
    never_ran = run(["redispatch-stuck"], fresh_vhost)
    with Connection(fresh_vhost) as connection:  # its queue is there, as nameko binds it, but nobody consumes
        exchange = Exchange("nameko-rpc", type="topic", durable=True)
        Queue(rpc_queue("message_service"), exchange, routing_key="message_service.*", durable=True)(
            connection.default_channel
        ).declare()
    stopped = run(["redispatch-stuck"], fresh_vhost, "--timeout", "1")

    assert (never_ran.returncode, never_ran.stderr.strip()) == (
        3,
        "redispatch-stuck: message_service is not running (no queue for it)",
    )
    assert (stopped.returncode, stopped.stderr.strip()) == (
        3,
        "redispatch-stuck: message_service did not answer within 1s",
    )
