"""Fail points fire only when armed, and `kill` kills the real process at that point."""

import os
import subprocess
import sys

import pytest

from common.failpoints import FailPointError, failpoint, parse

pytestmark = pytest.mark.unit

PROGRAM = """
from common.failpoints import failpoint
print("before", flush=True)
failpoint("message.after_commit")
print("after", flush=True)
"""


def run(failpoints: str | None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "FAILPOINTS"}
    if failpoints is not None:
        env["FAILPOINTS"] = failpoints
    return subprocess.run(
        [sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=60
    )


def test_an_unarmed_point_does_nothing():
    result = run(None)
    assert (result.returncode, result.stdout.split()) == (0, ["before", "after"])


def test_kill_sigkills_the_process_exactly_there():
    result = run("message.after_commit=kill")
    assert (result.returncode, result.stdout.split()) == (-9, ["before"])


def test_another_armed_point_leaves_this_one_alone():
    result = run("time_consuming.after_notify=kill")
    assert (result.returncode, result.stdout.split()) == (0, ["before", "after"])


def test_parse_rejects_unknown_points_and_actions():
    with pytest.raises(ValueError, match="unknown fail point 'message.typo'"):
        parse("message.typo=kill")
    with pytest.raises(ValueError, match="must be kill, raise or sleep"):
        parse("message.after_commit=explode")
    assert parse("message.after_commit=sleep(0.5); time_consuming.after_notify=raise") == {
        "message.after_commit": "sleep(0.5)",
        "time_consuming.after_notify": "raise",
    }


def test_calling_an_unlisted_point_is_a_bug():
    with pytest.raises(ValueError, match="add it to common.failpoints.POINTS"):
        failpoint("nowhere")


def test_raise_raises_a_fail_point_error(monkeypatch):
    monkeypatch.setattr("common.failpoints.ARMED", {"message.after_commit": "raise"})
    with pytest.raises(FailPointError):
        failpoint("message.after_commit")
