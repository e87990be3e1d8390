"""JSON logs that follow one request across services, and Prometheus metrics, from real `nameko run`s."""

import json
import subprocess
import sys
import uuid

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from common.errors import InvalidInput
from common.topology import rpc_queue
from testkit.processes import ServiceProcess, free_port, wait_for
from testkit.rabbit import HEAVY_PAYLOAD_QUEUE
from tests.ops.logs import consumers_now, json_lines, metrics_url, sample, scrape, worker_lines

SERVICES = ("message", "time_consuming", "sender", "receiver")


@pytest.fixture(scope="module")
def stack(amqp_uri, postgres, tmp_path_factory):
    env = {"AMQP_URI": amqp_uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"}
    log_dir = tmp_path_factory.mktemp("observed")
    processes = {
        service_dir: ServiceProcess(service_dir, {**env, "DATABASE_URL": postgres()}, log_dir)
        for service_dir in SERVICES
    }
    try:
        for queue in [rpc_queue(f"{service_dir}_service") for service_dir in SERVICES] + [
            HEAVY_PAYLOAD_QUEUE
        ]:
            wait_for(lambda q=queue: consumers_now(amqp_uri, q), timeout=60, message=queue)
        yield processes
    finally:
        for process in processes.values():
            process.stop()


def traced_proxy(amqp_uri: str, request_id: str) -> ClusterRpcProxy:
    """A client that starts the call-id stack with its own id, e.g. the request id of an HTTP edge."""
    return ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30, context_data={"call_id_stack": [request_id]})


def lines_of(process: ServiceProcess, request_id: str) -> list[dict]:
    return [line for line in worker_lines(process) if line.get("call_id_stack", [None])[0] == request_id]


def test_every_line_is_json_with_the_service_name(stack):
    for service_dir, process in stack.items():
        lines = json_lines(process)
        assert lines, service_dir
        assert {line["service"] for line in lines} == {f"{service_dir}_service"}
        assert all({"ts", "level", "logger", "message"} <= line.keys() for line in lines)


def test_one_call_is_followed_from_sender_to_receiver(stack, amqp_uri):
    request_id = f"trace-{uuid.uuid4()}"
    with traced_proxy(amqp_uri, request_id) as cluster_rpc:
        cluster_rpc.sender_service.send_event({"message": "follow me"})

    [sent] = wait_for(lambda: lines_of(stack["sender"], request_id), message="the sender's line")
    [received] = wait_for(lambda: lines_of(stack["receiver"], request_id), message="the receiver's line")
    assert (sent["entrypoint"], sent["outcome"]) == ("send_event", "ok")
    assert (received["entrypoint"], received["outcome"]) == ("receive_event", "ok")
    # The receiver's stack is the sender's plus its own call: the sender's call caused it.
    assert received["call_id_stack"] == [*sent["call_id_stack"], received["call_id"]]
    assert sent["duration_ms"] >= received["duration_ms"] > 0


def test_one_message_is_followed_through_message_and_time_consuming(stack, amqp_uri):
    request_id = f"trace-{uuid.uuid4()}"
    with traced_proxy(amqp_uri, request_id) as cluster_rpc:
        cluster_rpc.message_service.receive_message({"message": "heavy", "payload": {"k": 1}})

    lines = wait_for(
        lambda: len(found := lines_of(stack["message"], request_id)) == 2 and found,
        message="message_service's receive and outcome lines",
    )
    received, outcome = sorted(lines, key=lambda line: len(line["call_id_stack"]))
    [handled] = lines_of(stack["time_consuming"], request_id)
    assert received["entrypoint"] == "receive_message"
    assert handled["entrypoint"] == "time_consuming_event_handler"
    assert outcome["entrypoint"] == "on_payload_processed"
    # message -> (event) time_consuming -> (event) message: each stack extends its cause's.
    assert handled["call_id_stack"] == [*received["call_id_stack"], handled["call_id"]]
    assert outcome["call_id_stack"] == [*handled["call_id_stack"], outcome["call_id"]]
    assert {line["outcome"] for line in (received, handled, outcome)} == {"ok"}


def test_rejected_input_is_logged_as_rejected(stack, amqp_uri):
    request_id = f"trace-{uuid.uuid4()}"
    with traced_proxy(amqp_uri, request_id) as cluster_rpc, pytest.raises(InvalidInput):
        cluster_rpc.message_service.receive_message({"message": 42})

    [line] = wait_for(lambda: lines_of(stack["message"], request_id), message="the rejected call's line")
    assert (line["outcome"], line["error"], line["level"]) == ("rejected", "InvalidInput", "INFO")
    # Lines logged while the worker ran, here nameko's own warning, carry the same call id.
    [warning] = [
        other
        for other in json_lines(stack["message"])
        if other["logger"] == "nameko.containers" and other.get("call_id") == line["call_id"]
    ]
    assert warning["level"] == "WARNING"
    assert warning["call_id_stack"][0] == request_id


def test_programs_that_are_not_services_log_the_same_json():
    script = (
        "import logging; from common.logs import configure_json_logging; "
        "configure_json_logging(service='cron'); logging.getLogger('cron.job').info('sent %s', 3)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)

    line = json.loads(done.stderr.splitlines()[-1])  # after the import warnings of eventlet
    assert {key: line[key] for key in ("service", "logger", "level", "message")} == {
        "service": "cron",
        "logger": "cron.job",
        "level": "INFO",
        "message": "sent 3",
    }


def test_metrics_count_calls_outcomes_and_latency(stack, amqp_uri):
    receiver, message = metrics_url(stack["receiver"]), metrics_url(stack["message"])
    labels = {"service": "receiver_service", "entrypoint": "receive_event", "kind": "Rpc"}
    rejected = {"service": "message_service", "entrypoint": "receive_message", "kind": "Rpc"}
    before, before_message = scrape(receiver), scrape(message)

    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30) as cluster_rpc:
        for i in range(5):
            cluster_rpc.receiver_service.receive_event(f"counted {i}")
        with pytest.raises(InvalidInput):
            cluster_rpc.message_service.receive_message({"message": ""})

    # A worker's metrics are recorded after its reply is sent: wait for them rather than race.
    after = wait_for(
        lambda: (
            (s := scrape(receiver))
            and sample(s, "nameko_entrypoint_latency_seconds_count", **labels)
            == sample(before, "nameko_entrypoint_latency_seconds_count", **labels) + 5
            and s
        ),
        message="5 more receive_event calls in the receiver's metrics",
    )
    after_message = wait_for(
        lambda: (
            (s := scrape(message))
            and sample(s, "nameko_entrypoint_calls_total", **rejected, outcome="rejected")
            == sample(before_message, "nameko_entrypoint_calls_total", **rejected, outcome="rejected") + 1
            and s
        ),
        message="one rejected receive_message in message_service's metrics",
    )
    calls = "nameko_entrypoint_calls_total"
    assert sample(after, calls, **labels, outcome="ok") - sample(before, calls, **labels, outcome="ok") == 5
    assert sample(after, "nameko_entrypoint_errors_total", **labels) == 0
    assert sample(after, "nameko_entrypoint_latency_seconds_bucket", **labels, le="+Inf") >= 5
    assert sample(after, "nameko_workers_in_flight", service="receiver_service") == 0
    assert sample(after_message, "nameko_entrypoint_errors_total", **rejected) == 0
