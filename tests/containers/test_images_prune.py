"""`make images` removes the application tags it has superseded, and only those (tools/images.py).

Against the real engine, on a repository of the test's own (an empty image, tagged as the
application image is: by content hash), so no image of the project or of another checkout is touched.
"""

import importlib.util
import json
import os
import subprocess
import uuid

import pytest

from testkit.processes import ROOT
from tests.containers.compose_stack import engine_or_skip

_spec = importlib.util.spec_from_file_location("images", ROOT / "tools" / "images.py")
images = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(images)

CURRENT, PREVIOUS, OTHER_CHECKOUTS, GONE_CHECKOUTS = "a" * 16, "b" * 16, "c" * 16, "d" * 16
IN_A_CONTAINER, UNKNOWN = "e" * 16, "f" * 16


def docker(*args, input=None) -> str:
    return subprocess.run(["docker", *args], capture_output=True, check=True, input=input).stdout.decode()


def tags(repository) -> set[str]:
    return set(docker("images", "--format", "{{.Tag}}", repository).split())


@pytest.fixture
def repository():
    engine_or_skip()
    name = f"nameko-reference-prune-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    empty_tar = subprocess.run(["tar", "-cf", "-", "-T", "/dev/null"], capture_output=True).stdout
    docker("import", "-", f"{name}:latest", input=empty_tar)
    containers = []
    yield name, containers
    for container in containers:
        docker("rm", "-f", container)
    for tag in tags(name):
        docker("rmi", f"{name}:{tag}")


def test_only_superseded_tags_no_checkout_and_no_container_uses_are_removed(repository, tmp_path):
    name, containers = repository
    for tag in (CURRENT, PREVIOUS, OTHER_CHECKOUTS, GONE_CHECKOUTS, IN_A_CONTAINER, UNKNOWN, "v1"):
        docker("tag", f"{name}:latest", f"{name}:{tag}")
    containers.append(docker("create", f"{name}:{IN_A_CONTAINER}", "true").strip())
    this, other = tmp_path / "this-checkout", tmp_path / "other-checkout"
    other.mkdir()
    record = tmp_path / "app-tags.json"
    record.write_text(
        json.dumps(
            {
                "current": {
                    str(this): PREVIOUS,  # this checkout's last build, superseded by this one
                    str(other): OTHER_CHECKOUTS,
                    str(tmp_path / "removed-checkout"): GONE_CHECKOUTS,
                },
                "superseded": [IN_A_CONTAINER],
            }
        )
    )

    removed = images.prune_superseded_tags(
        CURRENT, repository=name, record=record, checkout=this, grace_seconds=0
    )

    assert sorted(removed) == sorted([PREVIOUS, GONE_CHECKOUTS])
    # UNKNOWN: no run recorded it (an older tools/images.py, another machine's habit): not ours to judge
    assert tags(name) == {"latest", CURRENT, OTHER_CHECKOUTS, IN_A_CONTAINER, UNKNOWN, "v1"}
    assert json.loads(record.read_text()) == {
        "current": {str(other): OTHER_CHECKOUTS, str(this): CURRENT},
        "superseded": [IN_A_CONTAINER],  # looked at again once its container is gone
    }


def test_a_superseded_tag_younger_than_the_grace_period_stays(repository, tmp_path):
    name, _ = repository
    docker("tag", f"{name}:latest", f"{name}:{PREVIOUS}")
    record = tmp_path / "app-tags.json"
    record.write_text(json.dumps({"current": {str(tmp_path): PREVIOUS}}))

    kept = images.prune_superseded_tags(
        CURRENT, repository=name, record=record, checkout=tmp_path, grace_seconds=3600
    )
    removed = images.prune_superseded_tags(
        CURRENT, repository=name, record=record, checkout=tmp_path, grace_seconds=0
    )

    assert (kept, removed) == ([], [PREVIOUS])
