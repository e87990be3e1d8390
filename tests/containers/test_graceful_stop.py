"""Last of tests/containers (files run in name order): stops the session's stack."""

import pytest

from testkit.containers import JOBS, SERVICES

pytestmark = pytest.mark.timeout(1500)


def service_of(container) -> str:
    return container["Config"]["Labels"]["com.docker.compose.service"]


def test_docker_stop_is_a_graceful_exit(compose_stack):
    """Last: `docker compose stop` (SIGTERM, SIGKILL after stop_grace_period) stops every container
    with exit code 0; a container killed at the deadline would show 137."""
    compose_stack.compose("stop")
    running = [c for c in compose_stack.containers() if service_of(c) not in JOBS]
    assert {c["Name"]: c["State"]["ExitCode"] for c in running} == {c["Name"]: 0 for c in running}
    assert len(running) == len(SERVICES) + 2  # receiver x3
