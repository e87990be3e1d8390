"""`make bench`'s round orders (bench/order.py): balanced for who goes first and who goes before whom."""

from collections import Counter
from itertools import permutations

import pytest

from bench.order import cycle_length, round_order

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("count", range(1, 10))
def test_each_round_runs_every_target_once(count):
    targets = list(range(count))
    for round_number in range(3 * cycle_length(count)):
        assert sorted(round_order(targets, round_number)) == targets


@pytest.mark.parametrize("count", range(2, 10))
def test_over_a_cycle_every_target_goes_first_equally_often(count):
    targets = list(range(count))
    firsts = Counter(round_order(targets, r)[0] for r in range(cycle_length(count)))
    assert set(firsts) == set(targets)
    assert len(set(firsts.values())) == 1


@pytest.mark.parametrize("count", range(2, 10))
def test_over_a_cycle_every_target_follows_every_other_equally_often(count):
    targets = list(range(count))
    followed = Counter()
    for round_number in range(cycle_length(count)):
        order = round_order(targets, round_number)
        followed.update(zip(order, order[1:], strict=False))
    assert set(followed) == set(permutations(targets, 2))
    assert len(set(followed.values())) == 1


def test_a_rotation_would_not_do():
    """What the design replaces: rotated, a target always runs behind the same neighbour."""
    targets = list(range(8))

    def predecessors_of_3(orders):
        return {order[order.index(3) - 1] for order in orders if order[0] != 3}

    assert predecessors_of_3(targets[k:] + targets[:k] for k in range(8)) == {2}
    assert predecessors_of_3(round_order(targets, r) for r in range(8)) == {0, 1, 2, 4, 5, 6, 7}
