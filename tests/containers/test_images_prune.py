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

from tests.containers.compose_stack import engine_or_skip
from tests.support import ROOT

_spec = importlib.util.spec_from_file_location("images", ROOT / "tools" / "images.py")
images = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(images)

CURRENT, OTHER_CHECKOUTS, GONE_CHECKOUTS, IN_A_CONTAINER = "a" * 16, "b" * 16, "c" * 16, "d" * 16


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


def test_only_tags_no_checkout_has_as_current_and_no_container_uses_are_removed(repository, tmp_path):
    name, containers = repository
    for tag in (CURRENT, OTHER_CHECKOUTS, GONE_CHECKOUTS, IN_A_CONTAINER, "0123456789abcdef", "v1"):
        docker("tag", f"{name}:latest", f"{name}:{tag}")
    containers.append(docker("create", f"{name}:{IN_A_CONTAINER}", "true").strip())
    other_checkout = tmp_path / "other-checkout"
    other_checkout.mkdir()
    record = tmp_path / "current-tags.json"
    record.write_text(
        json.dumps({str(other_checkout): OTHER_CHECKOUTS, str(tmp_path / "removed-checkout"): GONE_CHECKOUTS})
    )

    removed = images.prune_superseded_app_tags(
        CURRENT, repository=name, record=record, checkout=tmp_path / "this", grace_seconds=0
    )

    # superseded: recorded for a checkout that no longer exists, and one no checkout records
    assert sorted(removed) == sorted([GONE_CHECKOUTS, "0123456789abcdef"])
    assert tags(name) == {"latest", CURRENT, OTHER_CHECKOUTS, IN_A_CONTAINER, "v1"}
    assert json.loads(record.read_text()) == {
        str(other_checkout): OTHER_CHECKOUTS,
        str(tmp_path / "this"): CURRENT,
    }


def test_a_superseded_tag_younger_than_the_grace_period_stays(repository, tmp_path):
    name, _ = repository
    docker("tag", f"{name}:latest", f"{name}:{OTHER_CHECKOUTS}")
    record = tmp_path / "current-tags.json"

    kept = images.prune_superseded_app_tags(
        CURRENT, repository=name, record=record, checkout=tmp_path, grace_seconds=3600
    )
    removed = images.prune_superseded_app_tags(
        CURRENT, repository=name, record=record, checkout=tmp_path, grace_seconds=0
    )

    assert (kept, removed) == ([], [OTHER_CHECKOUTS])
