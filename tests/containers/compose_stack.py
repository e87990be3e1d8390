"""What the container tests add to `testkit.containers` (the compose stack and the experiments, shared
with `experiments --backend docker`): a skip without an engine, and the image build shown as it runs.
"""

import os
import shutil
import subprocess

import pytest

from testkit import containers


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


def build_images(config) -> str:
    """`make images`' own script, its progress shown rather than captured (a cold build takes
    minutes); returns the app image's tag."""
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        try:
            return containers.build_images()
        except RuntimeError as error:
            pytest.fail(str(error), pytrace=False)
