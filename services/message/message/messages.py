"""Messages: what message_service stores, and the states a message goes through.

received  no payload: nothing more to do
pending   payload handed to time_consuming_service, waiting for its outcome
done      payload uploaded and the notification sent
failed    time_consuming_service gave up; `reason` says why
"""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import JSON, DateTime, Integer, String, Text, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from common.errors import InvalidInput, NotFound
from common.schemas import NewMessage, lookup_key
from common.tracing import dispatch_with_trace_context, with_trace_context

RECEIVED, PENDING, DONE, FAILED = "received", "pending", "done", "failed"


class Base(DeclarativeBase):
    pass


def now() -> datetime:
    return datetime.now(UTC)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    message: Mapped[str] = mapped_column(Text)
    payload: Mapped[object | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now, onupdate=now)

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "message": self.message,
            "payload": self.payload,
            "status": self.status,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class OutboxEvent(Base):
    """An event to dispatch, written in the same transaction as the change it announces.

    `relay` sends it after the commit; if that fails (broker down, process killed in between), the
    row stays unsent and the service's timer sends it later: no stored message without its event.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[object] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


def store_message(session: Session, new: NewMessage) -> Message:
    message = Message(
        id=str(uuid.uuid4()),
        message=new.message,
        payload=new.payload if new.has_payload else None,
        status=PENDING if new.has_payload else RECEIVED,
    )
    with session.begin():
        session.add(message)
        if message.status == PENDING:
            event = with_trace_context(heavy_payload_event(message))  # the trace goes on when relayed
            session.add(OutboxEvent(event_type="heavy_payload_event", payload=event))
    return message


def heavy_payload_event(message: Message) -> dict:
    return {"message_id": message.id, "payload": message.payload}


def relay(session: Session, dispatch, limit: int = 100) -> int:
    """Dispatches unsent outbox events, oldest first; rows another relay holds are skipped.

    A crash after the dispatch and before the commit sends an event twice: its consumer is idempotent.
    """
    with session.begin():
        unsent = session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.sent_at.is_(None))
            .order_by(OutboxEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for event in unsent:
            dispatch_with_trace_context(dispatch, event.event_type, event.payload)
            event.sent_at = now()
    return len(unsent)


def get_message(session: Session, message_id) -> Message:
    key = lookup_key(message_id)
    message = session.get(Message, key) if key is not None else None
    if message is None:
        raise NotFound(f"no message with id {message_id!r}")
    return message


# Outcomes only move a message forward: a late `failed` (an earlier attempt's report arriving after
# a replay succeeded) never overwrites `done`; a replayed message that succeeds goes failed -> done.
ADVANCES_FROM = {DONE: (PENDING, FAILED), FAILED: (PENDING,)}


def record_outcome(session: Session, message_id, status, reason: str | None = None) -> Message:
    """Records time_consuming_service's `payload_processed` report; InvalidInput/NotFound are final."""
    if status not in ADVANCES_FROM or lookup_key(message_id) is None:
        raise InvalidInput(f"invalid outcome: message_id {message_id!r}, status {status!r}")
    with session.begin():
        session.execute(
            update(Message)
            .where(Message.id == message_id, Message.status.in_(ADVANCES_FROM[status]))
            .values(status=status, reason=reason)
        )
        return get_message(session, message_id)


def claim_stuck_messages(session: Session, older_than: timedelta, limit: int = 100) -> list[Message]:
    """Messages `pending` for longer than `older_than`, oldest first, marked as just updated.

    Touching `updated_at` means the next run leaves them alone for another `older_than`; rows another
    run is claiming right now are skipped (PostgreSQL's SKIP LOCKED), so overlapping runs never
    claim the same message.
    """
    with session.begin():
        stuck = session.scalars(
            select(Message)
            .where(Message.status == PENDING, Message.updated_at < now() - older_than)
            .order_by(Message.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for message in stuck:
            message.updated_at = now()
    return stuck
