"""Receipts: which events this service has handled, once each however often they are delivered."""

from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, String, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from common.errors import InvalidInput
from common.keys import MAX_KEY_CHARS, lookup_key, strict_json_size


class Base(DeclarativeBase):
    pass


class Receipt(Base):
    __tablename__ = "receipts"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    event: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def record_receipt(session: Session, event) -> bool:
    """Record an event that carries an `id`; False when that id was already recorded.

    RabbitMQ redelivers a request whose worker died before acking it, so the same event can
    arrive twice: the primary key turns the second insert into a no-op.
    Events without an `id` cannot be told apart from a redelivery, so they are not recorded.
    """
    if not isinstance(event, dict) or "id" not in event:
        return False
    event_id = lookup_key(event["id"])
    if event_id is None:
        raise InvalidInput(f"event id must be a string or integer of 1..{MAX_KEY_CHARS} chars, without NUL")
    try:
        strict_json_size(event)
    except ValueError:
        raise InvalidInput("event must be JSON: NaN and Infinity are not") from None
    try:
        with session.begin():
            session.add(Receipt(event_id=event_id, event=event, received_at=datetime.now(UTC)))
    except IntegrityError:
        return False
    return True


def count_receipts(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Receipt))
