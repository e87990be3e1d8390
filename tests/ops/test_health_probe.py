"""`nameko-probe`, the health check for compose and Kubernetes, against a real `nameko run` receiver."""

import json
import subprocess

import pytest

from common.topology import rpc_queue
from testkit.processes import BIN, ROOT, ServiceProcess, wait_for
from testkit.rabbit import broker_address
from tests.docs import replayed_blocks
from tests.ops.proxy import TcpProxy, through

RPC_QUEUE = rpc_queue("receiver_service")


def healthy(env: dict):
    return (result := probe(env))[0] == 0 and result


def probe(env: dict) -> tuple[int, dict]:
    done = subprocess.run(
        [
            BIN / "nameko-probe",
            "--config",
            "services/receiver/config.yaml",
            "--timeout=2",
            "receiver.service",
        ],
        cwd=ROOT,
        env={"PATH": str(BIN), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, json.loads(done.stdout)


@pytest.fixture
def broker_proxy(broker_uri):
    proxy = TcpProxy(broker_address(broker_uri)).start()
    yield proxy
    proxy.stop()


def test_probe_fails_while_the_broker_is_unreachable_and_recovers_after(
    amqp_uri, postgres, broker_proxy, tmp_path
):
    database = postgres()
    # The service and the probe reach the broker through a proxy the test can cut.
    env = {"AMQP_URI": through(broker_proxy, amqp_uri), "DATABASE_URL": database}
    direct = {"AMQP_URI": amqp_uri, "DATABASE_URL": database}
    receiver = ServiceProcess("receiver", env, tmp_path)
    try:
        code, report = wait_for(lambda: healthy(env), timeout=60, message="healthy")
        assert report["checks"] == {"broker": "ok", RPC_QUEUE: "ok", "database": "ok"}

        broker_proxy.cut()
        code, report = probe(env)
        assert code == 1
        assert report["checks"]["broker"].startswith("unreachable")
        # Seen from a path that still reaches the broker: the service lost its consumer.
        code, report = wait_for(lambda: (result := probe(direct))[0] == 1 and result, message="no consumer")
        assert report["checks"][RPC_QUEUE] == "no consumer"

        broker_proxy.restore()
        # nameko reconnects by itself; the probe says so once the consumer is back.
        code, report = wait_for(lambda: healthy(env), timeout=60, message="recovered")
        assert report["healthy"] is True
    finally:
        exit_code = receiver.stop()
    assert exit_code == 0, receiver.output()


def test_probe_reports_a_service_nobody_serves_and_an_unreachable_database(amqp_uri):
    code, report = probe({"AMQP_URI": amqp_uri, "DATABASE_URL": "postgresql+pg8000://postgres@127.0.0.1:1/x"})

    assert code == 1
    assert report["checks"]["broker"] == "ok"
    assert report["checks"][RPC_QUEUE] != "ok"  # missing, or declared but without a consumer
    assert report["checks"]["database"].startswith("failed")


def test_the_docs_probe_command_prints_what_they_show(amqp_uri, postgres, tmp_path):
    (block,) = replayed_blocks("tests/ops/test_health_probe.py")
    env = {"AMQP_URI": amqp_uri, "DATABASE_URL": postgres()}
    receiver = ServiceProcess("receiver", env, tmp_path)
    try:
        wait_for(lambda: healthy(env), timeout=60, message="healthy")
        # the docs' command as written, with .venv/bin from this checkout
        shown = subprocess.run(
            ["bash", "-c", block.commands[0]],
            cwd=ROOT,
            env={"PATH": f"{BIN}:/usr/bin:/bin", **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        receiver.stop()

    report, exit_line = shown.stdout.splitlines()
    shown_report, shown_exit_line = block.output
    assert exit_line == shown_exit_line
    assert without_duration(json.loads(report)) == without_duration(json.loads(shown_report))


def without_duration(report: dict) -> dict:
    return {key: value for key, value in report.items() if key != "duration_ms"}
