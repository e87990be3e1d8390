"""`make bench`'s RPC rounds: the targets take turns, so a slow stretch of the machine weighs on all.

Made-up targets on a made-up clock: each call moves the clock on by the target's cost, times the
machine's slowness at that moment; nothing here is timed for real.
"""

import pytest

from bench.run import SEQUENTIAL_TURN, measure_rpc

pytestmark = pytest.mark.unit


class Machine:
    """The clock, and a slow stretch: from the `slow_from`-th measured call on, every call costs `factor`x."""

    def __init__(self, slow_from=None, factor=1.0):
        self.now, self.calls, self.slow_from, self.factor = 0.0, [], slow_from, factor

    def clock(self):
        return self.now

    def run(self, label, cost):
        slow = self.slow_from is not None and len(self.calls) >= self.slow_from
        self.now += cost * (self.factor if slow else 1.0)
        self.calls.append(label)


class Target:
    def __init__(self, machine, label, cost, baseline=None):
        self.machine, self.label, self.cost, self.baseline = machine, label, cost, baseline

    def call(self):
        self.machine.run(self.label, self.cost)

    def pipelined(self, count, window=100):
        for _ in range(count):
            self.machine.run(self.label, self.cost / 4)  # four times the sequential rate in flight


class NoProgress:
    def add_task(self, *args, **kwargs):
        return None

    def advance(self, *args):
        pass


def measure(machine, rounds=1, sequential=500, pipelined=600):
    targets = [
        Target(machine, "echo", 0.001),
        Target(machine, "receiver", 0.002, baseline="echo"),
    ]
    return measure_rpc(targets, rounds, sequential, pipelined, NoProgress(), clock=machine.clock)


def test_each_target_is_timed_on_its_own_calls():
    summary = measure(Machine(), rounds=3)
    assert summary["echo"]["sequential_calls_per_s"] == pytest.approx(1000)
    assert summary["receiver"]["sequential_calls_per_s"] == pytest.approx(500)
    assert summary["receiver"]["pipelined_calls_per_s"] == pytest.approx(2000)
    assert summary["receiver"]["sequential_vs_baseline"] == pytest.approx(0.5)


def test_the_targets_take_turns_of_a_few_calls_through_the_round():
    machine = Machine()
    measure(machine, sequential=30, pipelined=100)
    sequential = machine.calls[40:100]  # after each target's 20 warm-up calls
    turn = SEQUENTIAL_TURN
    assert sequential == (["echo"] * turn + ["receiver"] * turn) * 3


def test_a_slow_stretch_in_the_middle_of_a_round_leaves_the_ratio_as_it_is():
    # Half-way through the round's sequential calls the machine becomes three times slower: had
    # each target made all its calls in one go, the receiver's would all be slow (ratio 0.17x).
    warm_up = 2 * 20
    machine = Machine(slow_from=warm_up + 500, factor=3.0)
    summary = measure(machine, sequential=500, pipelined=100)
    assert summary["receiver"]["sequential_vs_baseline"] == pytest.approx(0.5)
