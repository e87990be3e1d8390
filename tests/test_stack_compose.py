"""Unit tests of the local runner's reading of docker-compose.yml (no processes, no broker)."""

import pytest

from stack.compose import ComposeError, interpolate
from stack.runner import LocalStack
from tests.support import ROOT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${SET:-d}", "value"),
        ("${EMPTY:-d}", "d"),
        ("${UNSET:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("$SET/${SET}", "value/value"),
        ("$$SET costs $$5", "$SET costs $5"),
        ("${UNSET}", ""),
    ],
)
def test_interpolation_follows_the_compose_specification(text, expected):
    assert interpolate(text, {"SET": "value", "EMPTY": ""}) == expected


@pytest.mark.parametrize("text", ["${UNSET:?set it}", "${EMPTY:?set it}", "${UNSET?set it}"])
def test_a_required_variable_without_a_value_is_an_error(text):
    with pytest.raises(ComposeError, match="set it"):
        interpolate(text, {"EMPTY": ""})


def test_a_local_process_gets_composes_settings_but_this_machines_infrastructure(monkeypatch):
    monkeypatch.delenv("AMQP_URI", raising=False)
    monkeypatch.setenv("MAX_WORKERS", "4")
    stack = LocalStack(ROOT / "docker-compose.yml", service_env={"receiver": {"LOG_LEVEL": "DEBUG"}})
    receiver = stack.project.services["receiver"]

    env = stack.environment(receiver)

    assert "@rabbitmq:" in receiver.environment["AMQP_URI"]
    assert "AMQP_URI" not in env and "DATABASE_URL" not in env  # config.yaml defaults: localhost, SQLite
    assert env["DATABASE_AUTO_MIGRATE"] == "false"  # the migrations job runs first, as in compose
    assert env["MAX_WORKERS"] == "4"  # the shell wins
    assert env["LOG_LEVEL"] == "DEBUG"  # and explicit overrides win over everything


def test_scale_overrides_replicas_and_names_follow_compose():
    stack = LocalStack(ROOT / "docker-compose.yml", services=["receiver", "sender"], scale={"receiver": 3})

    assert list(stack.instances) == ["sender-1", "receiver-1", "receiver-2", "receiver-3"]
    assert [job.name for job in stack.project.jobs_for(stack.services)] == ["migrations"]
