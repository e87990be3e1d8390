"""The job ledger (`time_consuming.jobs`) on SQLite: leases, steps, states only forward. No server."""

from datetime import timedelta

import pytest

from time_consuming.jobs import (
    Base,
    JobBusy,
    claim_job,
    get_job,
    record_failed,
    record_notified,
    record_uploaded,
    release,
)

pytestmark = pytest.mark.unit

LEASE = timedelta(minutes=5)


@pytest.fixture
def db(sqlite_sessions):
    return sqlite_sessions(Base.metadata)


def test_a_live_lease_keeps_another_delivery_out_but_not_the_owners_retry(db):
    first = claim_job(db(), "m-1", owner="delivery-1", lease=LEASE)
    retried = claim_job(db(), "m-1", owner="delivery-1", lease=LEASE)

    with pytest.raises(JobBusy):
        claim_job(db(), "m-1", owner="delivery-2", lease=LEASE)
    assert (first.state, retried.state, get_job(db(), "m-1").attempts) == ("pending", "pending", 2)


def test_a_released_or_expired_lease_lets_the_next_delivery_in(db):
    claim_job(db(), "released", owner="delivery-1", lease=LEASE)
    release(db(), "released", owner="delivery-1", error="S3 unreachable")
    claim_job(db(), "expired", owner="delivery-1", lease=timedelta(0))

    assert claim_job(db(), "released", owner="delivery-2", lease=LEASE).owner == "delivery-2"
    assert claim_job(db(), "expired", owner="delivery-2", lease=LEASE).owner == "delivery-2"


def test_a_notified_job_is_not_claimed_again(db):
    claim_job(db(), "m-1", owner="delivery-1", lease=LEASE)
    record_uploaded(db(), "m-1", "payloads/m-1.json")
    record_notified(db(), "m-1")

    assert claim_job(db(), "m-1", owner="delivery-2", lease=LEASE) is None


def test_a_replay_of_a_failed_job_starts_from_the_last_step_recorded(db):
    claim_job(db(), "m-1", owner="delivery-1", lease=LEASE)
    record_uploaded(db(), "m-1", "payloads/m-1.json")
    record_failed(db(), "m-1", "webhook refused the notification: HTTP 410")

    replay = claim_job(db(), "m-1", owner="replay", lease=LEASE)

    assert (replay.state, replay.object_key) == ("uploaded", "payloads/m-1.json")


def test_states_only_move_forward(db):
    claim_job(db(), "m-1", owner="delivery-1", lease=LEASE)
    record_notified(db(), "m-1")

    assert record_failed(db(), "m-1", "a lease that expired meanwhile") is False
    assert record_uploaded(db(), "m-1", "payloads/m-1.json") is False
    assert get_job(db(), "m-1").state == "notified"
