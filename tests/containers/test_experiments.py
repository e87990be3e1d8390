"""The article's experiments on containers: three receiver containers of docker-compose.yml.

Round-robin over the three; `docker kill` and `docker stop` of two of them while 50 calls run; the
broker container restarted with events waiting; one receiver cut off the network (`docker network
disconnect`) while calls run. Each asserts counts: every call answered, every event handled once.
"""

import contextlib
import json
import subprocess
import uuid

import eventlet
import pytest
from eventlet.event import Event
from nameko.standalone.rpc import ClusterRpcProxy

from testkit.processes import wait_for
from testkit.rabbit import HEAVY_PAYLOAD_QUEUE
from tests.containers.test_compose_stack import amqp_uri, management

pytestmark = pytest.mark.timeout(1500)


def docker(*args) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def receivers(stack) -> dict[str, str]:
    """{container name: id} of the receiver containers."""
    return {c["Name"].lstrip("/"): c["Id"] for c in stack.containers("receiver")}


def answered(log: str) -> int:
    """receive_event workers that succeeded, from WorkerLog's one JSON line per worker."""
    count = 0
    for line in log.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            count += record.get("entrypoint") == "receive_event" and record.get("outcome") == "ok"
    return count


def handled(stack) -> dict[str, int]:
    """Calls each receiver container has answered so far."""
    logs = {
        name: subprocess.run(["docker", "logs", cid], capture_output=True, text=True, check=True)
        for name, cid in receivers(stack).items()
    }
    return {name: answered(log.stdout + log.stderr) for name, log in logs.items()}


def consumers_of_rpc_queue(stack) -> int:
    return len(management(stack, "queues/%2F/rpc-receiver_service")["consumer_details"])


def calls_in_flight(stack, count: int, events: list[dict], after_replies=None, action=None) -> list:
    """`count` calls to receiver_service at once from the host; `action()` once `after_replies` of
    them have been answered (the rest still queued or being worked on); returns every reply.

    One greenthread reads the replies (nameko's reply listener allows one reader), in order."""
    replies = []
    enough = Event()
    with ClusterRpcProxy({"AMQP_URI": amqp_uri(stack)}, timeout=240) as rpc:
        pending = [rpc.receiver_service.receive_event.call_async(event) for event in events]

        def collect():
            for call in pending:
                try:
                    replies.append(call.result())
                except Exception as error:  # noqa: BLE001 -- the test counts what came back
                    replies.append(error)
                if len(replies) == after_replies:
                    enough.send()

        collector = eventlet.spawn(collect)
        if action:
            enough.wait()
            action()
        collector.wait()
    return replies


@pytest.fixture
def stack(compose_stack):
    return compose_stack


@pytest.fixture(autouse=True)
def three_receivers_after(stack):
    """Whatever a test stopped, killed or cut off is back before the next one."""
    yield
    back_to_three(stack)


def back_to_three(stack):
    stack.compose("up", "-d", "--scale", "receiver=3", "--no-recreate")
    wait_for(stack.healthy, timeout=180, interval=1, message="the stack healthy again")
    wait_for(lambda: consumers_of_rpc_queue(stack) == 3, timeout=60, interval=1, message="3 consumers")


def test_calls_go_round_robin_over_the_three_receiver_containers(stack):
    before = handled(stack)
    with ClusterRpcProxy({"AMQP_URI": amqp_uri(stack)}, timeout=30) as rpc:
        for number in range(12):
            rpc.receiver_service.receive_event({"id": f"rr-{number}", "message": "Hello World!!"})
    after = handled(stack)
    assert sorted(after[name] - before[name] for name in after) == [4, 4, 4]


def test_two_of_three_receivers_killed_and_stopped_mid_flight_every_call_is_answered(stack):
    names = sorted(receivers(stack))
    events = [{"id": f"kill-{uuid.uuid4().hex}", "message": f"call {n}"} for n in range(50)]

    def kill_two_mid_flight():
        docker("kill", names[0])
        docker("stop", names[1])

    with ClusterRpcProxy({"AMQP_URI": amqp_uri(stack)}, timeout=30) as rpc:
        receipts_before = rpc.receiver_service.receipt_count()
    replies = calls_in_flight(stack, 50, events, after_replies=5, action=kill_two_mid_flight)
    assert replies == [f"Event Received: {event}" for event in events]
    states = {n: docker("inspect", "-f", "{{.State.ExitCode}}", n).strip() for n in names[:2]}
    assert states == {names[0]: "137", names[1]: "0"}  # SIGKILL, and a graceful stop
    with ClusterRpcProxy({"AMQP_URI": amqp_uri(stack)}, timeout=30) as rpc:
        # one receipt per event id, however many containers worked on it (redelivered calls)
        assert rpc.receiver_service.receipt_count() - receipts_before == 50


def test_the_broker_container_restarted_with_events_waiting_nothing_is_lost(stack):
    stack.compose("stop", "time_consuming")
    with ClusterRpcProxy({"AMQP_URI": amqp_uri(stack)}, timeout=30) as rpc:
        ids = [
            rpc.message_service.receive_message({"message": "m", "payload": {"n": n}})["id"]
            for n in range(20)
        ]
    queue = HEAVY_PAYLOAD_QUEUE
    wait_for(
        lambda: management(stack, f"queues/%2F/{queue}")["messages"] == 20,
        timeout=60,
        interval=0.5,
        message="20 events waiting",
    )
    stack.compose("restart", "rabbitmq")
    stack.compose("start", "time_consuming")
    back_to_three(stack)
    with ClusterRpcProxy({"AMQP_URI": amqp_uri(stack)}, timeout=30) as rpc:

        def statuses():
            found = [rpc.message_service.get_message(i)["status"] for i in ids]
            return found if "pending" not in found else None

        final = wait_for(statuses, timeout=120, interval=1, message="no message pending")
    assert final == ["done"] * 20


def test_a_receiver_cut_off_the_network_loses_nothing_and_rejoins(stack):
    network = next(iter(stack.containers("receiver")[0]["NetworkSettings"]["Networks"]))
    cut = sorted(receivers(stack))[2]
    docker("network", "disconnect", network, cut)
    events = [{"id": f"cut-{uuid.uuid4().hex}", "message": f"call {n}"} for n in range(30)]

    def reconnect_after_30_s():
        eventlet.sleep(30)
        docker("network", "connect", network, cut)

    replies = calls_in_flight(stack, 30, events, after_replies=1, action=reconnect_after_30_s)
    assert replies == [f"Event Received: {event}" for event in events]
    wait_for(lambda: consumers_of_rpc_queue(stack) == 3, timeout=240, interval=1, message="it rejoined")
    ip = json.loads(docker("inspect", cut))[0]["NetworkSettings"]["Networks"][network]["IPAddress"]
    peers = {
        c["channel_details"]["peer_host"]
        for c in management(stack, "queues/%2F/rpc-receiver_service")["consumer_details"]
    }
    assert ip in peers
