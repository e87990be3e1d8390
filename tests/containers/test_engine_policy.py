"""Without a Docker engine the container tests skip with the reason, except under CI=true: there
a missing engine fails the run, so CI can never pass with the containers untested."""

import os
import subprocess
import sys

import pytest

from testkit.processes import ROOT

A_CONTAINER_TEST = "tests/containers/test_compose_stack.py::test_the_http_interface_answers_on_the_host"


def pytest_without_an_engine(ci: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock", "CI": ci}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", A_CONTAINER_TEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("ci", ["", "false"])
def test_a_missing_engine_is_a_skip_with_the_reason(ci):
    result = pytest_without_an_engine(ci)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout and "container tests need a Docker engine" in result.stdout


def test_under_ci_a_missing_engine_is_a_failure():
    result = pytest_without_an_engine("true")
    assert result.returncode != 0
    assert "CI=true and the container tests cannot run" in result.stdout
