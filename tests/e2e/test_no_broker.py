"""A newcomer's first minute without RabbitMQ: one line saying what to start, exit 2, no traceback.

Against a real port nothing listens on (free_port, or a network namespace of the test's own), with
each command's own environment.
"""

import os
import subprocess

from testkit import compose
from testkit.processes import BIN, ROOT, free_port
from tests.docs import replayed_blocks

HINT = "start it with tools/test-services (or everything in containers: make up), or set AMQP_URI"


def nowhere() -> tuple[str, str]:
    """An AMQP URI nothing answers, and how the message shows it (no password)."""
    port = free_port()
    return f"amqp://guest:guest@127.0.0.1:{port}/", f"amqp://guest:***@127.0.0.1:{port}/"


def run(command: list, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_stack_up_says_which_broker_is_missing_and_how_to_start_one(tmp_path):
    uri, shown = nowhere()

    result = run([BIN / "stack", "--state-dir", tmp_path, "up"], AMQP_URI=uri)

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"stack: no RabbitMQ at {shown} ([Errno 111] Connection refused): {HINT}"
    ]
    assert result.stdout == ""
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").iterdir())  # nothing was started


def test_make_run_prints_that_line_and_exits_2():
    # A network namespace of its own: nothing listens on its loopback, so `make run` meets what a
    # newcomer without RabbitMQ meets, with its default AMQP_URI. `-o`: the venv is taken as built.
    make_run = "ip link set lo up && exec make --no-print-directory -o .venv/.installed run"

    # as a user's shell starts it, not as a sub-make of `make test` (which would print `make[1]:`)
    shell_env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    result = subprocess.run(
        ["unshare", "--net", "sh", "-c", make_run],
        cwd=ROOT,
        env=shell_env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 2
    assert result.stdout == ""
    ours, makes = result.stderr.splitlines()  # make adds its own line about the failed recipe
    assert makes.startswith("make: *** [Makefile:") and makes.endswith("run] Error 2")
    (shown,) = replayed_blocks("tests/e2e/test_no_broker.py")
    assert shown.commands == ["make run"]
    assert shown.output == [ours]  # the README shows the very line
    assert (
        ours
        == f"stack: no RabbitMQ at amqp://guest:***@localhost:5672/ ([Errno 111] Connection refused): {HINT}"
    )


def test_the_topology_job_says_it_in_one_line_too():
    uri, shown = nowhere()
    job = compose.load(ROOT / "docker-compose.yml", environ={}).services["topology"]

    command = [BIN / job.command[0], *job.command[1:]]  # as the image's PATH finds it

    result = run(command, **{**job.environment, "AMQP_URI": uri})

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"nameko-topology: no RabbitMQ at {shown} ([Errno 111] Connection refused): {HINT}"
    ]
