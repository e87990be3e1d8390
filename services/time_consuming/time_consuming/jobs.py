"""Jobs: one row per message id, so a redelivered event never does the work twice."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from common.schemas import lookup_key

PROCESSING, DONE, FAILED = "processing", "done", "failed"


class Base(DeclarativeBase):
    pass


def now() -> datetime:
    return datetime.now(UTC)


class Job(Base):
    __tablename__ = "jobs"

    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now, onupdate=now)

    def as_dict(self) -> dict:
        return {
            "message_id": self.message_id,
            "state": self.state,
            "attempts": self.attempts,
            "last_error": self.last_error,
        }


@contextmanager
def claim_job(session: Session, message_id: str) -> Iterator[Job | None]:
    """Yields the job to work on, or None when an earlier delivery already finished it.

    The job's row stays locked until the block ends, so a duplicate delivered meanwhile waits and
    then sees it done; if the worker dies, its connection drops, the lock goes, and the redelivered
    event does the work again.
    """
    with session.begin():
        try:
            with session.begin_nested():
                session.add(Job(message_id=message_id, state=PROCESSING, attempts=0))
        except IntegrityError:
            pass  # an earlier delivery created it
        job = session.get(Job, message_id, with_for_update=True, populate_existing=True)
        if job.state == DONE:
            yield None
            return
        job.attempts += 1
        yield job
        job.state = DONE


def get_job(session: Session, message_id: str) -> Job | None:
    key = lookup_key(message_id)
    return session.get(Job, key) if key is not None else None
