"""A wrong setting stops `nameko run` at start: one line naming the key, status 1, no traceback.

Real processes, each pointed at this run's broker vhost, so a service that did start would stay up
(and the test would fail waiting for it to exit).
"""

import subprocess

import pytest

from testkit import compose
from testkit.processes import BIN, ROOT
from tests.docs import replayed_blocks


@pytest.fixture(scope="module")
def quiet_warnings() -> str:
    """nameko's and eventlet's deprecation warnings filtered as compose filters them."""
    project = compose.load(ROOT / "docker-compose.yml", environ={})
    return project.app_services[0].environment["PYTHONWARNINGS"]


def nameko_run(command: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env={"PATH": f"{BIN}:/usr/bin:/bin", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "service, environment, line",
    [
        (
            "message",
            {"QUEUE_TYPE": "mirrored"},
            "QUEUE_TYPE: Input should be 'classic' or 'quorum', got 'mirrored'",
        ),
        (
            "message",
            {"HTTP_MAX_BODY_BYTES": "1MB"},
            "HTTP_MAX_BODY_BYTES: Input should be a valid integer, got '1MB'",
        ),
        (
            "receiver",
            {"RECEIVER_WORK_SECONDS": "-1"},
            "RECEIVER_WORK_SECONDS: Input should be greater than or equal to 0, got -1",
        ),
        ("sender", {"MAX_WORKERS": "ten"}, "max_workers: Input should be a valid integer, got 'ten'"),
        (
            "time_consuming",
            {"RETRY_DELAYS": "5,0"},
            "RETRY_DELAYS.1: Input should be greater than 0, got '0'",
        ),
        (
            "time_consuming",
            {"S3_READ_TIMEOUT": "long", "WEBHOOK_RETRIES": "abc"},
            "WEBHOOK_RETRIES: Input should be a valid integer, got 'abc'; "
            "S3_READ_TIMEOUT: Input should be a valid number, got 'long'",
        ),
    ],
)
def test_an_invalid_value_ends_nameko_run_with_one_line(amqp_uri, quiet_warnings, service, environment, line):
    done = nameko_run(
        f"nameko run --config services/{service}/config.yaml {service}.service",
        {"AMQP_URI": amqp_uri, "PYTHONWARNINGS": quiet_warnings, **environment},
    )

    assert (done.returncode, done.stdout) == (1, f"settings: {line}\n")


def test_the_documented_failure(amqp_uri, quiet_warnings):
    (block,) = replayed_blocks("tests/ops/test_settings_at_start.py")
    [command] = block.commands

    done = nameko_run(command, {"AMQP_URI": amqp_uri, "PYTHONWARNINGS": quiet_warnings})

    assert done.stdout.splitlines() == block.output
