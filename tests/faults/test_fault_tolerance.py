"""The article's fault-tolerance claim: kill receiver instances while calls are in flight, lose nothing.

Three receivers (the runner starts them from docker-compose.yml, as `stack up --scale receiver=3`),
50 concurrent calls each carrying an id; while all three hold calls, two are stopped: with SIGKILL
(`docker kill`: their unacknowledged requests go back to the queue and the survivor runs them again)
or with SIGTERM (`docker stop`: nameko finishes the calls it started). Either way every call gets its
reply and each id is recorded exactly once (the receiver is idempotent by event id).
"""

import signal

import pytest
from kombu import Connection
from nameko.standalone.rpc import ClusterRpcProxy

from common.topology import rpc_queue
from testkit.localstack import make_local_stack
from testkit.processes import wait_for

CALLS = 50
RECEIVERS = ["receiver-1", "receiver-2", "receiver-3"]
STOPPED = ["receiver-2", "receiver-3"]
MAX_WORKERS = 10  # also each instance's prefetch: 3 x 10 calls in flight, the rest waits in the queue


def ready_messages(amqp_uri: str, queue: str) -> int:
    """Messages waiting in the queue, now (the management API's figures lag by seconds)."""
    with Connection(amqp_uri) as connection:
        return connection.default_channel.queue_declare(queue, passive=True).message_count


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_stopping_two_of_three_receivers_mid_flight_loses_no_call(amqp_uri, postgres, tmp_path, signum):
    stack = make_local_stack(
        amqp_uri,
        postgres,
        tmp_path,
        services=["receiver"],
        scale={"receiver": len(RECEIVERS)},
        env={"RECEIVER_WORK_SECONDS": "1", "MAX_WORKERS": str(MAX_WORKERS)},
    )
    with stack:
        stack.run_jobs()
        stack.start()
        stack.wait_ready()
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=60) as cluster:
            calls = [
                cluster.receiver_service.receive_event.call_async({"id": f"ft-{i}"}) for i in range(CALLS)
            ]
            # Each instance takes MAX_WORKERS calls (its prefetch) at once; once 30 have left the queue,
            # all three hold calls. `<=` and not `==`: a poll that comes late must not miss the moment.
            wait_for(
                lambda: ready_messages(amqp_uri, rpc_queue("receiver_service")) <= CALLS - 3 * MAX_WORKERS,
                message="every receiver holding calls",
            )
            for name in STOPPED:
                if signum == signal.SIGKILL:
                    stack.kill(name)
                else:
                    stack.send_signal(name, signal.SIGTERM)
            replies = [call.result() for call in calls]
            exit_codes = {name: stack.instances[name].process.wait(30) for name in STOPPED}

            assert replies == [f"Event Received: {{'id': 'ft-{i}'}}" for i in range(CALLS)]
            assert cluster.receiver_service.receipt_count() == CALLS
        assert exit_codes == dict.fromkeys(STOPPED, -signal.SIGKILL if signum == signal.SIGKILL else 0)
        assert stack.instances["receiver-1"].running
