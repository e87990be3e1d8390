"""`make test`'s runner (tools/test_shards.py): every test in exactly one shard, and the exit status
is a failure when any shard fails."""

import importlib.util
import subprocess
import sys

import pytest

from testkit.processes import ROOT

spec = importlib.util.spec_from_file_location("test_shards", ROOT / "tools" / "test_shards.py")
shards = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shards)


def collected(arguments: list[str]) -> list[str]:
    listing = subprocess.run(
        [*arguments, "--collect-only", "-q", "-p", "no:randomly"], cwd=ROOT, capture_output=True, text=True
    )
    assert listing.returncode == 0, listing.stdout[-2000:] + listing.stderr[-2000:]
    return [line for line in listing.stdout.splitlines() if "::" in line]


def test_every_test_of_the_suite_runs_in_exactly_one_shard():
    whole = collected([sys.executable, "-m", "pytest"])
    per_shard = {name: collected(shards.command(name, [])) for name in shards.SHARDS}
    assert all(per_shard.values()), {name: len(ids) for name, ids in per_shard.items()}
    together = [test for ids in per_shard.values() for test in ids]
    assert sorted(together) == sorted(whole)  # none missing, none twice


@pytest.mark.parametrize(
    ("exits", "status"),
    [((0, 0, 0), 0), ((0, 1, 0), 1), ((5, 0, 5), 0), ((5, 5, 5), 5), ((0, 0, 2), 2)],
)
def test_the_run_fails_when_any_shard_fails(exits, status, monkeypatch, tmp_path):
    monkeypatch.setattr(shards, "SHARDS", {"first": ["a"], "second": ["b"], "rest": []})
    code_of = dict(zip(shards.SHARDS, exits, strict=True))
    monkeypatch.setattr(shards, "LOGS", tmp_path)
    exit_with = lambda name, extra: [sys.executable, "-c", f"print('{name}'); exit({code_of[name]})"]  # noqa: E731
    monkeypatch.setattr(shards, "command", exit_with)
    assert shards.main([]) == status
    assert {log.name for log in tmp_path.iterdir()} == {f"{name}.log" for name in shards.SHARDS}
