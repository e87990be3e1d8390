"""`docker compose up -d --scale receiver=3` for real: images from `make images`, no registry.

One stack for the session (a compose project of its own, `down -v` afterwards), shared with
test_experiments; test_graceful_stop stops it last.
"""

import importlib.util
import re
import subprocess

import pytest
import requests
import yaml
from nameko.standalone.rpc import ClusterRpcProxy

from testkit.containers import AMQP_HEARTBEAT, JOBS, MAX_WORKERS, RECEIVER_WORK_SECONDS, SERVICES
from testkit.processes import ROOT, wait_for
from tests.containers.conftest import OTEL_TRACES_SAMPLER_ARG
from tests.docs import replayed_blocks

_spec = importlib.util.spec_from_file_location("images", ROOT / "tools" / "images.py")
images = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(images)

# A cold `make images` runs inside the first test's setup.
pytestmark = pytest.mark.timeout(1500)

HELLO = {"message": "Hello World!!"}


def service_of(container) -> str:
    return container["Config"]["Labels"]["com.docker.compose.service"]


def test_the_one_shot_jobs_completed_and_every_service_is_healthy(compose_stack):
    containers = compose_stack.containers()
    by_service = {}
    for container in containers:
        by_service.setdefault(service_of(container), []).append(container)
    assert set(by_service) == set(SERVICES) | set(JOBS)
    for job in JOBS:
        assert [(c["State"]["Status"], c["State"]["ExitCode"]) for c in by_service[job]] == [("exited", 0)]
    assert len(by_service["receiver"]) == 3
    for service in set(SERVICES) - {"cron"}:  # cron has no health check: yacron's job logs are its signal
        for container in by_service[service]:
            assert container["State"]["Health"]["Status"] == "healthy", container["Name"]


def test_three_receiver_containers_consume_the_rpc_queue(compose_stack):
    receivers = {
        next(iter(c["NetworkSettings"]["Networks"].values()))["IPAddress"]
        for c in compose_stack.containers("receiver")
    }
    consumers = compose_stack.management("queues/%2F/rpc-receiver_service")["consumer_details"]
    assert {consumer["channel_details"]["peer_host"] for consumer in consumers} == receivers
    assert len(receivers) == 3


def test_the_articles_calls_from_the_host_through_the_published_port(compose_stack):
    with ClusterRpcProxy({"AMQP_URI": compose_stack.amqp_uri}, timeout=30) as rpc:
        assert rpc.receiver_service.receive_event(HELLO) == f"Event Received: {HELLO}"
        assert rpc.sender_service.send_event(HELLO) == f"Event Received: {HELLO}"
        # the full flow: PostgreSQL, the event to time_consuming, the upload to the S3 server, back
        stored = rpc.message_service.receive_message({"message": "Hello", "payload": {"report": [1, 2, 3]}})
        assert stored["status"] == "pending"
        done = wait_for(
            lambda: (m := rpc.message_service.get_message(stored["id"]))["status"] != "pending" and m,
            timeout=60,
            interval=0.5,
            message="the payload uploaded",
        )
        assert done["status"] == "done", done
        assert rpc.time_consuming_service.get_job(stored["id"])["state"] == "notified"


def test_notifications_reach_the_webhook_sink_once_per_message(compose_stack):
    """The default stack: time_consuming POSTs each notification to the webhook-sink container."""
    base = f"http://127.0.0.1:{compose_stack.host_port('message', 8000)}"
    sink = f"http://127.0.0.1:{compose_stack.host_port('webhook-sink', 8000)}/notifications"
    created = requests.post(f"{base}/messages", json={"message": "notify", "payload": {"n": 1}}, timeout=10)
    message_id = created.json()["id"]

    def notified():
        listing = requests.get(sink, timeout=10).json()["notifications"]
        return [n for n in listing if n["idempotency_key"] == message_id]

    [notification] = wait_for(notified, timeout=60, interval=0.5, message="the notification at the sink")
    assert notification["body"]["message_id"] == message_id
    assert notification["body"]["outcome"] == "uploaded" and notification["deliveries"] == 1
    received = [line for line in compose_stack.logs("webhook-sink").splitlines() if message_id in line]
    assert len(received) == 1 and '"message": "notification received"' in received[0], received


def test_the_load_profile_runs_locust_against_the_stack_with_no_failures(compose_stack):
    """`docker compose --profile load run --rm load`, LOAD_DURATION=5s LOAD_USERS=4 from the shell."""
    result = compose_stack.compose("--profile", "load", "run", "--rm", "load", check=False, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.stdout.split("load: summary", 1)[1]
    rows = [line.split() for line in summary.splitlines()[2:] if line]
    assert {(row[0], row[1]) for row in rows} == {
        ("POST", "/messages"),
        ("GET", "/messages/[id]"),
        ("rpc", "message_service.receive_message"),
        ("rpc", "message_service.get_message"),
        ("rpc", "receiver_service.receive_event"),
        ("-", "Aggregated"),
    }, result.stdout[-3000:]
    assert all(int(row[2]) > 0 and row[3] == "0" for row in rows), summary


def test_the_docs_session_against_the_published_port_prints_what_they_show(compose_stack):
    """docs/running.md's session, as written, against this stack: the published port asked of compose,
    the article's call from the host at that port, and from inside a container."""
    (block,) = replayed_blocks("tests/containers/test_compose_stack.py")
    up, port_step, *calls, down = block.steps
    assert up[0].startswith("RABBITMQ_PORT=0 ") and down[0] == "docker compose down -v"  # the stack's own

    [published] = shell(compose_stack, port_step[0])
    shown_port = port_step[1][0].rsplit(":", 1)[1]
    assert re.fullmatch(r"127\.0\.0\.1:\d+", published) and re.fullmatch(r"\d+", shown_port)
    for command, shown in calls:
        printed = shell(compose_stack, command.replace(f":{shown_port}/", f":{published.rsplit(':', 1)[1]}/"))
        assert [line for line in printed if line.strip() != ">>>"] == shown, command


def shell(compose_stack, command: str) -> list[str]:
    """`command` in a user's shell at the checkout, with this stack's compose project."""
    done = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=compose_stack.env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_http_interface_answers_on_the_host(compose_stack):
    base = f"http://127.0.0.1:{compose_stack.host_port('message', 8000)}"
    assert requests.get(f"{base}/health", timeout=10).json()["status"] == "ok"
    created = requests.post(f"{base}/messages", json={"message": "over HTTP"}, timeout=10)
    assert created.status_code == 201, created.text
    assert (
        requests.get(f"{base}/messages/{created.json()['id']}", timeout=10).json()["message"] == "over HTTP"
    )
    bad = requests.post(f"{base}/messages", json={"message": 1}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"] == "InvalidInput"


def test_the_cron_service_runs_redispatch_stuck(compose_stack):
    """yacron's job at start (deploy/cron/yacron.yaml) runs the cron command in the cron container."""

    def finished():
        lines = compose_stack.logs("cron").splitlines()
        return [line for line in lines if "Job redispatch-stuck-at-start exit code" in line]

    [line] = wait_for(finished, timeout=120, interval=1, message="yacron's job at start to finish")
    assert "exit code 0;" in line
    assert "handed to time_consuming_service again" in compose_stack.logs("cron")


def test_settings_pass_through_from_the_shell(compose_stack):
    for container in compose_stack.containers("receiver"):
        env = dict(item.split("=", 1) for item in container["Config"]["Env"])
        assert (env["RECEIVER_WORK_SECONDS"], env["MAX_WORKERS"]) == (RECEIVER_WORK_SECONDS, MAX_WORKERS)
    for container in compose_stack.containers():
        if (container["Config"]["Cmd"] or [])[:2] == ["nameko", "run"]:
            env = dict(item.split("=", 1) for item in container["Config"]["Env"])
            tracing = (env["OTEL_TRACES_SAMPLER_ARG"], env["OTEL_EXPORTER_OTLP_ENDPOINT"])
            assert tracing == (OTEL_TRACES_SAMPLER_ARG, ""), container["Name"]
    for container in compose_stack.containers("receiver"):
        env = dict(item.split("=", 1) for item in container["Config"]["Env"])
        assert env["AMQP_HEARTBEAT"] == AMQP_HEARTBEAT


def test_the_consumers_heartbeat_is_the_one_set_in_the_shell(compose_stack):
    """AMQP_HEARTBEAT reaches nameko's HEARTBEAT: the broker shows it negotiated on every receiver's
    consuming connection (the one a network cut must be noticed on)."""
    addresses = {
        next(iter(c["NetworkSettings"]["Networks"].values()))["IPAddress"]
        for c in compose_stack.containers("receiver")
    }
    heartbeats = {}
    for connection in compose_stack.management("connections"):
        heartbeats.setdefault(connection["peer_host"], set()).add(connection["timeout"])
    assert {address: int(AMQP_HEARTBEAT) in heartbeats.get(address, ()) for address in addresses} == {
        address: True for address in addresses
    }


def test_every_container_runs_on_a_read_only_root_file_system(compose_stack):
    for container in compose_stack.containers():
        assert container["HostConfig"]["ReadonlyRootfs"], container["Name"]
    denied = compose_stack.compose("exec", "-T", "receiver", "touch", "/app/written", check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr


def test_the_compose_file_names_images_make_images_builds():
    """Every image compose runs is one `make images` builds: nothing is left to pull."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    built = {image.name.split(":")[0] for image in images.IMAGES}
    for name, service in compose["services"].items():
        assert service["image"].split(":")[0] in built, name
        assert service["pull_policy"] == "never", name
