"""Messages: what message_service stores, and the states a message goes through.

received  no payload: nothing more to do
pending   payload handed to time_consuming_service, waiting for its outcome
done      payload uploaded and the notification sent
failed    time_consuming_service gave up; `reason` says why
"""

import logging
import uuid
from datetime import UTC, datetime, timedelta

from nameko.amqp.publish import UndeliverableMessage
from prometheus_client import Counter, Gauge
from sqlalchemy import JSON, DateTime, Integer, String, Text, UniqueConstraint, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from common.contracts import MessageStatus, OutcomeStatus
from common.db import States
from common.errors import Conflict, InvalidInput, NotFound
from common.failpoints import failpoint
from common.keys import lookup_key
from common.schemas import NewMessage
from common.tracing import dispatch_with_trace_context, with_trace_context

log = logging.getLogger(__name__)
UNROUTABLE = Counter(
    "message_outbox_unroutable", "Outbox events the broker routed to no queue: left unsent", ["event_type"]
)

OUTBOX_UNSENT = Gauge("message_outbox_unsent", "Outbox events not sent yet (as the relay timer last counted)")
OUTBOX_OLDEST_UNSENT_AGE = Gauge(
    "message_outbox_oldest_unsent_age_seconds", "Age of the oldest unsent outbox event; 0 when none"
)

RECEIVED, PENDING, DONE, FAILED = MessageStatus


class Base(DeclarativeBase):
    pass


def now() -> datetime:
    return datetime.now(UTC)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("request_key", name="uq_messages_request_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    message: Mapped[str] = mapped_column(Text)
    payload: Mapped[object | None] = mapped_column(JSON, nullable=True)
    status: Mapped[MessageStatus] = mapped_column(States(MessageStatus))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now, onupdate=now)
    # The request that created it (see `request_key()`), unique: a request delivered or sent again
    # finds its message instead of storing another; `request_hash` is its body's fingerprint.
    request_key: Mapped[str | None] = mapped_column(String(160), nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)

    @property
    def first_result(self) -> dict:
        """What `receive_message` answered when it stored this message, and answers again for it."""
        return {"id": self.id, "status": PENDING if self.payload is not None else RECEIVED}

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
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)


def request_key(new: NewMessage, correlation_id: str | None) -> str | None:
    """The request's identity: the client's idempotency key, else the RPC request's correlation id
    (which a redelivery keeps), else none (an HTTP request without a key). Prefixed, so that
    a client's key can never equal a correlation id."""
    if new.idempotency_key is not None:
        return f"key:{new.idempotency_key}"
    return f"rpc:{correlation_id}" if correlation_id else None


def with_idempotency_key(event, header: str | None):
    """An HTTP request's body with its `Idempotency-Key` header as the event's `idempotency_key`."""
    if header is None or not isinstance(event, dict):
        return event
    if event.get("idempotency_key", header) != header:  # two keys for one request contradict each other
        raise Conflict("the Idempotency-Key header and the body's idempotency_key differ")
    return {**event, "idempotency_key": header}


def store_message(session: Session, new: NewMessage, correlation_id: str | None = None) -> Message:
    """Stores `new` with its event in the outbox, once per request: a request seen before (same
    key) gets the message it stored, a key used for another message a `Conflict`.

    The key is unique in the table, so of two concurrent requests with one key only one commits;
    the other's IntegrityError sends it to read the winner's message. A new request, the usual case,
    is one INSERT per row and no lookup first: only a request seen before pays for the second try.
    """
    key, fingerprint = request_key(new, correlation_id), new.fingerprint()
    message = Message(
        id=str(uuid.uuid4()),
        message=new.message,
        payload=new.payload if new.has_payload else None,
        status=PENDING if new.has_payload else RECEIVED,
        request_key=key,
        request_hash=fingerprint,
    )
    try:
        with session.begin():
            session.add(message)
            if message.status == PENDING:
                event = with_trace_context(heavy_payload_event(message))  # the trace goes on when relayed
                session.add(OutboxEvent(event_type="heavy_payload_event", payload=event))
            session.flush()
            failpoint("message.before_commit")
    except IntegrityError:
        if key is None:
            raise
        # The key is taken: this request was seen before (or is being stored right now by its twin).
        with session.begin():
            existing = find_request(session, key)
    else:
        failpoint("message.after_commit")
        return message
    if existing.request_hash != fingerprint:
        raise Conflict(f"idempotency key {new.idempotency_key!r} was used for another message")
    return existing


def find_request(session: Session, key: str | None) -> Message | None:
    if key is None:
        return None
    return session.scalars(select(Message).where(Message.request_key == key)).one_or_none()


def heavy_payload_event(message: Message) -> dict:
    return {"message_id": message.id, "payload": message.payload}


def relay(session: Session, dispatch, limit: int = 100) -> int:
    """Dispatches unsent outbox events, oldest first; rows another relay holds are skipped.

    `dispatch` publishes `mandatory` with confirms: an event the broker routes to no queue (its
    consumer's queue not declared yet) raises UndeliverableMessage and stays unsent, for the next
    relay. A crash after the dispatch and before the commit sends an event twice: its consumer is
    idempotent. Returns how many were sent.
    """
    failpoint("message.before_relay")
    sent = []
    with session.begin():
        unsent = session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.sent_at.is_(None))
            .order_by(OutboxEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for event in unsent:
            try:
                dispatch_with_trace_context(dispatch, event.event_type, event.payload)
            except UndeliverableMessage:
                UNROUTABLE.labels(event.event_type).inc()
                log.warning(
                    "outbox event %s (%s) reached no queue: left unsent, tried again later",
                    event.id,
                    event.event_type,
                    extra={"outbox_id": event.id, "event_type": event.event_type},
                )
                continue
            failpoint("message.before_outbox_mark")
            sent.append(event.id)
        if sent:  # one UPDATE for the batch, in the transaction that holds the rows' locks
            session.execute(
                update(OutboxEvent).where(OutboxEvent.id.in_(sent)).values(sent_at=now()),
                execution_options={"synchronize_session": False},
            )
    return len(sent)


class OutboxBacklog:
    """The unsent outbox events as `measure` last counted them (the relay timer calls it, not requests).

    The age of the oldest is worked out when Prometheus scrapes, from when it was created: it grows
    between two counts, and keeps growing while the database cannot be counted.
    """

    def __init__(self):
        self.unsent = 0
        self.oldest: datetime | None = None
        OUTBOX_UNSENT.set_function(lambda: self.unsent)
        OUTBOX_OLDEST_UNSENT_AGE.set_function(self.oldest_age_seconds)

    def measure(self, session: Session) -> None:
        with session.begin():
            self.unsent, oldest = session.execute(
                select(func.count(), func.min(OutboxEvent.created_at)).where(OutboxEvent.sent_at.is_(None))
            ).one()
        # SQLite hands back naive UTC
        self.oldest = oldest.replace(tzinfo=oldest.tzinfo or UTC) if oldest is not None else None

    def oldest_age_seconds(self) -> float:
        return (now() - self.oldest).total_seconds() if self.oldest is not None else 0.0


def prune_sent(session: Session, older_than: timedelta) -> int:
    """Deletes outbox rows sent more than `older_than` ago; unsent ones stay, whatever their age."""
    with session.begin():
        result = session.execute(delete(OutboxEvent).where(OutboxEvent.sent_at < now() - older_than))
    return result.rowcount


def get_message(session: Session, message_id) -> Message:
    key = lookup_key(message_id)
    message = session.get(Message, key) if key is not None else None
    if message is None:
        raise NotFound(f"no message with id {message_id!r}")
    return message


# Outcomes only move a message forward: a late `failed` (an earlier attempt's report arriving after
# a replay succeeded) never overwrites `done`; a replayed message that succeeds goes failed -> done.
ADVANCES_FROM = {OutcomeStatus.DONE: (PENDING, FAILED), OutcomeStatus.FAILED: (PENDING,)}


def record_outcome(session: Session, message_id, status, reason: str | None = None) -> bool:
    """Records time_consuming_service's `payload_processed` report; InvalidInput/NotFound are final.

    True when the message moved; False when it was already past `status` (a late or repeated
    report). One UPDATE in the usual case: the message is looked up only when nothing moved.
    """
    if status not in ADVANCES_FROM or lookup_key(message_id) is None:
        raise InvalidInput(f"invalid outcome: message_id {message_id!r}, status {status!r}")
    with session.begin():
        moved = session.execute(
            update(Message)
            .where(Message.id == message_id, Message.status.in_(ADVANCES_FROM[status]))
            .values(status=MessageStatus(status), reason=reason)
        ).rowcount
        if not moved:
            get_message(session, message_id)  # NotFound when there is no such message
    return bool(moved)


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
