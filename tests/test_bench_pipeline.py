"""`make bench`'s pipeline rounds: the project's and bare's runs of a setup side by side, and paired."""

import pytest

from bench.pipeline import bench_message, paired_versus_bare, pairs, setups, warm_up
from common.schemas import NewMessage, parse

pytestmark = pytest.mark.unit


def test_the_project_and_bare_of_each_setup_are_a_pair_and_the_rest_stand_alone():
    plan = setups(messages=300, scale_messages=80, webhook_delay=1.0, scale_workers=2)
    found = {tuple(setup.label for setup in pair) for pair in pairs(plan)}
    assert (
        "project, PostgreSQL, 2 time_consumings",
        "bare, PostgreSQL, 2 time_consumings",
    ) in found
    assert (
        "project, PostgreSQL, 4 time_consumings of 2 workers, webhook 1000 ms",
        "bare, PostgreSQL, 4 time_consumings of 2 workers, webhook 1000 ms",
    ) in found
    assert ("project, SQLite, 1 time_consuming",) in found  # no bare twin
    assert ("project, PostgreSQL over TLS (sslmode=prefer), 2 time_consumings",) in found
    assert sorted(s.label for pair in pairs(plan) for s in pair) == sorted(s.label for s in plan)  # each once


def run(round_number, setup, rate, done=300) -> dict:
    return {
        "round": round_number,
        "setup": setup.label,
        "messages": 300,
        "done": done,
        "messages_per_s": rate,
    }


def test_each_round_is_compared_with_bare_in_the_same_round_and_cut_runs_are_left_out():
    plan = setups(messages=300, scale_messages=80, webhook_delay=1.0, scale_workers=2)
    project, bare = next(pair for pair in pairs(plan) if len(pair) == 2 and not pair[0].webhook_delay)
    runs = [
        run(1, project, 40), run(1, bare, 50),
        run(2, project, 20), run(2, bare, 25),  # a slow stretch: both sides slower, the ratio the same
        run(3, project, 10, done=120), run(3, bare, 50),  # the project's run timed out: no ratio
    ]  # fmt: skip
    assert paired_versus_bare(runs, project) == pytest.approx([0.8, 0.8])


def test_warm_up_and_measured_messages_are_handed_to_time_consuming():
    """An empty payload is stored `received` and goes no further: the warm-up would leave every
    time_consuming instance cold (the bench before its run of 2026-12-07 22:29 UTC)."""
    assert parse(NewMessage, bench_message(0)).has_payload


class Reply:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


class StoppedShort:
    """A message_service whose messages never reach time_consuming: stored `received`."""

    def __init__(self):
        self.receive_message = self
        self.count = 0

    def call_async(self, event):
        self.count += 1
        return Reply({"id": f"m-{self.count}", "status": "received"})

    def get_message(self, message_id):
        return {"id": message_id, "status": "received"}


class Sink:
    def __init__(self):
        self.keys = []  # the Idempotency-Keys the webhook saw: none here


def test_a_warm_up_that_does_not_reach_the_webhook_stops_the_bench():
    with pytest.raises(SystemExit, match="only 0 of 3 warm-up messages reached the webhook"):
        warm_up(StoppedShort(), Sink(), 3, in_flight=2, timeout=1)
