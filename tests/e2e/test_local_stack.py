"""The local runner (`stack`): compose's services as named local processes: scaled, stopped, killed."""

import os
import signal
import subprocess

import psutil
import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from testkit import compose
from testkit.processes import BIN, ROOT, wait_for

COMPOSE = compose.load(ROOT / "docker-compose.yml")


def receive(amqp_uri: str, event) -> str:
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=10) as cluster_rpc:
        return cluster_rpc.receiver_service.receive_event(event)


def test_instances_are_named_like_compose_and_run_composes_command(local_stack):
    stack = local_stack("receiver", scale={"receiver": 3})

    assert list(stack.instances) == ["receiver-1", "receiver-2", "receiver-3"]
    for instance in stack.instances.values():
        command = psutil.Process(instance.pid).cmdline()
        assert command[-4:] == COMPOSE.services["receiver"].command[1:]
        assert stack.is_ready(instance.name)


def test_each_http_instance_gets_its_own_port(local_stack):
    stack = local_stack("message", scale={"message": 2})

    addresses = {instance.web_address for instance in stack.instances.values()}

    assert len(addresses) == 2
    for instance in stack.instances.values():
        assert psutil.Process(instance.pid).environ()["WEB_SERVER_ADDRESS"] == instance.web_address


def test_one_instance_is_killed_by_name_the_others_serve_and_it_stays_down_until_started(
    local_stack, amqp_uri
):
    stack = local_stack("receiver", scale={"receiver": 2})
    stack.start_supervisor()
    first_pid = stack.instances["receiver-2"].pid

    assert stack.kill("receiver-2") == {"receiver-2": -signal.SIGKILL}
    assert receive(amqp_uri, "while receiver-2 is down") == "Event Received: while receiver-2 is down"
    stack.supervise()
    # killed on purpose: no restart scheduled, whatever the compose restart policy
    assert stack.instances["receiver-2"].restart_due is None
    assert not stack.instances["receiver-2"].running

    stack.start("receiver-2")
    stack.wait_ready("receiver-2")

    assert stack.instances["receiver-2"].pid != first_pid
    assert stack.stop("receiver-2") == {"receiver-2": 0}  # SIGTERM: a graceful stop


def test_an_instance_that_dies_is_restarted_by_its_compose_restart_policy(local_stack):
    assert COMPOSE.services["receiver"].restart == "unless-stopped"
    stack = local_stack("receiver")
    stack.start_supervisor()
    crashed_pid = stack.instances["receiver-1"].pid

    os.kill(crashed_pid, signal.SIGKILL)  # not through the stack: a crash, as far as it knows

    wait_for(lambda: stack.instances["receiver-1"].pid != crashed_pid, message="a new receiver-1")
    stack.wait_ready("receiver-1")


@pytest.fixture
def stack_up(amqp_uri, postgres, tmp_path):
    """`stack up` as a user runs it, in its own process, on this run's vhost and a fresh database."""
    env = {
        **os.environ,
        "AMQP_URI": amqp_uri,
        "DATABASE_URL": postgres(),
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    state_dir = tmp_path / "state"
    output = tmp_path / "output.log"

    def stack(*arguments, check=True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [BIN / "stack", "--state-dir", state_dir, *arguments],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert not check or result.returncode == 0, result.stderr
        return result

    with open(output, "w") as log:
        up = subprocess.Popen(
            [BIN / "stack", "--state-dir", state_dir, "up", "--scale", "receiver=2", "receiver", "sender"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield up, stack, output
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


def test_stack_up_runs_stops_and_kills_by_name_shows_logs_and_forwards_ctrl_c(stack_up):
    up, stack, output = stack_up
    names = ["receiver-1", "receiver-2", "sender-1"]  # compose's start order, then by name
    wait_for(
        lambda: all(f"stack: {n} ready" in output.read_text() for n in names),
        timeout=60,
        message="every instance ready",
    )

    rows = [line.split() for line in stack("ps").stdout.splitlines()[1:]]
    assert [(row[0], row[2]) for row in rows] == [(name, "ready") for name in names]
    assert stack("kill", "receiver-2").stdout == "receiver-2: exited with -9\n"
    assert "exited (-9)" in stack("ps").stdout
    killed_log = stack("logs", "receiver-2").stdout.splitlines()
    assert killed_log and all(line.startswith("receiver-2 ") for line in killed_log)
    assert stack("start", "receiver-2").stdout.startswith("receiver-2: pid ")
    wait_for(lambda: output.read_text().count("stack: receiver-2 ready") == 2, message="receiver-2 back")

    up.send_signal(signal.SIGINT)  # Ctrl-C: forwarded to every instance as SIGTERM

    assert up.wait(30) == 0
    text = output.read_text()
    assert "stack: exit codes receiver-1=0, receiver-2=0, sender-1=0" in text
    # every line of an instance's output carries its name, as `docker compose up` prints it
    assert any(line.startswith("receiver-2 ") and "Connected to amqp" in line for line in text.splitlines())
    assert stack("ps", check=False).returncode != 0  # nothing runs any more
