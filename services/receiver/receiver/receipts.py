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


def receipt_of(event) -> Receipt | None:
    """The receipt to record for an event; None for one without an `id`.

    RabbitMQ redelivers a request whose worker died before acking it, so the same event can
    arrive twice: its `id` is the receipt's primary key, which turns the second insert into a no-op.
    Events without an `id` cannot be told apart from a redelivery, so they are not recorded, and
    their worker never opens a database connection.
    """
    if not isinstance(event, dict) or "id" not in event:
        return None
    event_id = lookup_key(event["id"])
    if event_id is None:
        raise InvalidInput(f"event id must be a string or integer of 1..{MAX_KEY_CHARS} chars, without NUL")
    try:
        strict_json_size(event)
    except ValueError:
        raise InvalidInput("event must be JSON: NaN and Infinity are not") from None
    return Receipt(event_id=event_id, event=event, received_at=datetime.now(UTC))


def record_receipt(session: Session, receipt: Receipt) -> bool:
    """Records a receipt once; False when its event id was already recorded."""
    try:
        with session.begin():
            session.add(receipt)
    except IntegrityError:
        return False
    return True


def count_receipts(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Receipt))
