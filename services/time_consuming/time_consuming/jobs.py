"""Jobs: one row per message id, so a redelivered event never does the work twice.

pending   created by the first delivery
uploaded  the payload is in object storage (`object_key`), the webhook not told yet
notified  the webhook accepted the notification: finished, later deliveries do nothing
failed    gave up (`last_error`); the event was parked, and a replay tries again

No transaction is open during the upload or the webhook call: a delivery claims the job in a short
transaction (`owner`, `lease_until`, `attempts`), does one step, records it in its own short
transaction. A second delivery of the same event meanwhile finds the lease alive and does nothing
(`JobBusy`: its event is retried later); once the lease has expired (its owner was killed) it takes
over. The owner is the delivery (`common.retries.Attempt.delivery`): its own retries keep the lease.
States only move forward: pending, uploaded, notified; `failed` never overwrites `notified`.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, Integer, String, Text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from common.contracts import JobState
from common.db import States, insert_if_absent
from common.keys import lookup_key

PENDING, UPLOADED, NOTIFIED, FAILED = JobState


class Base(DeclarativeBase):
    pass


def now() -> datetime:
    return datetime.now(UTC)


def utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite hands back naive UTC


class JobBusy(Exception):
    """Another delivery holds the job's lease: try again later (not a failure of the job)."""


class Job(Base):
    __tablename__ = "jobs"

    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    state: Mapped[JobState] = mapped_column(States(JobState))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    object_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now, onupdate=now)

    def as_dict(self) -> dict:
        return {
            "message_id": self.message_id,
            "state": self.state,
            "attempts": self.attempts,
            "object_key": self.object_key,
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class Claim:
    owner: str
    state: JobState
    object_key: str | None


def claim_job(session: Session, message_id: str, owner: str, lease: timedelta) -> Claim | None:
    """Claims the job for `owner` (a delivery and its retries); None when it is finished already.

    The lease is the owner's until it expires: a retry of the same delivery takes it again (its
    release may have failed with the database), another delivery must wait.
    """
    with session.begin():
        # The first delivery creates the job, claimed: one statement, the usual case. A later one
        # finds the row an earlier delivery created, and locks it to look at its state and lease.
        lease_until = now() + lease
        if insert_if_absent(
            session,
            Job,
            message_id=message_id,
            state=PENDING,
            attempts=1,
            owner=owner,
            lease_until=lease_until,
        ):
            return Claim(owner, PENDING, None)
        job = session.get(Job, message_id, with_for_update=True, populate_existing=True)
        if job.state == NOTIFIED:
            return None
        if job.owner not in (None, owner) and job.lease_until is not None and utc(job.lease_until) > now():
            raise JobBusy(f"job {message_id} is being worked on by {job.owner}")
        if job.state == FAILED:  # a replay: start again from the last step recorded
            job.state = UPLOADED if job.object_key else PENDING
        job.owner, job.lease_until = owner, lease_until
        job.attempts += 1
        job.last_error = None
        return Claim(owner, job.state, job.object_key)


def _advance(session: Session, message_id: str, from_states: tuple, **values) -> bool:
    with session.begin():
        # Core's UPDATE on the session's connection: no ORM objects to keep in step with it
        result = session.connection().execute(
            update(Job).where(Job.message_id == message_id, Job.state.in_(from_states)).values(**values)
        )
    return result.rowcount == 1


def record_uploaded(session: Session, message_id: str, object_key: str) -> bool:
    return _advance(session, message_id, (PENDING,), state=UPLOADED, object_key=object_key)


def record_notified(session: Session, message_id: str) -> bool:
    return _advance(
        session, message_id, (PENDING, UPLOADED, FAILED), state=NOTIFIED, owner=None, lease_until=None
    )


def record_failed(session: Session, message_id: str, reason: str) -> bool:
    """Gave up; a late `failed` (a lease that expired while another delivery finished) changes nothing."""
    return _advance(
        session,
        message_id,
        (PENDING, UPLOADED),
        state=FAILED,
        last_error=reason,
        owner=None,
        lease_until=None,
    )


def release(session: Session, message_id: str, owner: str, error: str) -> None:
    """This delivery stops (its event is retried later): the next one need not wait for the lease."""
    with session.begin():
        session.execute(
            update(Job)
            .where(Job.message_id == message_id, Job.owner == owner)
            .values(owner=None, lease_until=None, last_error=error)
        )


def get_job(session: Session, message_id: str) -> Job | None:
    key = lookup_key(message_id)
    return session.get(Job, key) if key is not None else None
