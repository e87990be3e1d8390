"""Jobs: one row per message id, so a redelivered event never does the work twice.

pending   created by the first delivery
uploaded  the payload is in object storage (`object_key`)
notified  the webhook accepted the notification: finished, later deliveries do nothing
failed    gave up (`last_error`); the event was dead-lettered, and a replay tries again
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from common.schemas import lookup_key

PENDING, UPLOADED, NOTIFIED, FAILED = "pending", "uploaded", "notified", "failed"


class Base(DeclarativeBase):
    pass


def now() -> datetime:
    return datetime.now(UTC)


class Job(Base):
    __tablename__ = "jobs"

    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    object_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
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


@contextmanager
def claim_job(session: Session, message_id: str) -> Iterator[Job | None]:
    """Yields the job to work on, or None when an earlier delivery already finished it.

    The job's row stays locked until the block ends, so a duplicate delivered meanwhile waits and
    then sees it notified; if the worker dies, its connection drops, the lock goes, nothing of the
    attempt is committed, and the redelivered event does the work again (the upload overwrites).
    """
    with session.begin():
        try:
            with session.begin_nested():
                session.add(Job(message_id=message_id, state=PENDING, attempts=0))
        except IntegrityError:
            pass  # an earlier delivery created it
        job = session.get(Job, message_id, with_for_update=True, populate_existing=True)
        if job.state == NOTIFIED:
            yield None
            return
        job.attempts += 1
        job.last_error = None
        yield job


def get_job(session: Session, message_id: str) -> Job | None:
    key = lookup_key(message_id)
    return session.get(Job, key) if key is not None else None
