"""The article's experiments on containers: three receiver containers of docker-compose.yml.

The experiments are `testkit.containers`' (which `experiments --backend docker` runs too, for their
timings); here each one's counts are asserted: every call answered, every event handled once.
"""

import pytest

from testkit import containers

pytestmark = pytest.mark.timeout(1500)


@pytest.fixture
def stack(compose_stack):
    return compose_stack


@pytest.fixture(autouse=True)
def three_receivers(stack):
    """Three receivers consuming before each test (an earlier module's `compose run` may have
    brought `receiver` back to its one replica), and whatever a test stopped, killed or cut off back
    after it."""
    stack.back_to_three()
    yield
    stack.back_to_three()


def test_calls_go_round_robin_over_the_three_receiver_containers(stack):
    assert containers.round_robin(stack, calls=12).per_container == [4, 4, 4]


def test_concurrent_calls_spread_over_the_running_receiver_containers(stack):
    """9 calls at once, each receiver taking at most MAX_WORKERS=3: one container answers all 9
    (the others stopped); three answer 3 each."""
    one = containers.concurrent_calls(stack, receivers=1, calls=9)
    assert (one.answered, one.per_container) == (9, [9])
    three = containers.concurrent_calls(stack, receivers=3, calls=9)
    assert (three.answered, three.per_container) == (9, [3, 3, 3])


def test_two_of_three_receivers_killed_and_stopped_mid_flight_every_call_is_answered(stack):
    result = containers.kill_and_stop(stack, calls=50, after_replies=5)
    assert result.answered == 50
    assert result.exit_codes == {"docker kill": 137, "docker stop": 0}  # SIGKILL, a graceful stop
    assert result.receipts == 50  # one per event id, however many containers worked on it


def test_the_broker_container_restarted_with_events_waiting_nothing_is_lost(stack):
    result = containers.broker_restart(stack, events_=20)
    assert (result.waiting_before, result.done) == (20, 20)


def test_a_receiver_cut_off_the_network_loses_nothing_and_rejoins(stack):
    result = containers.network_cut(stack, calls=30, cut_seconds=30)
    assert (result.answered, result.rejoined) == (30, True)
