"""The message pipeline written as bare Nameko: the baseline the project's pipeline is measured against.

What a first version following the article would be: message intake inserts the message, commits and
dispatches `heavy_payload_event` with nameko's own EventDispatcher; the handler uploads the payload
to S3 (boto3) and POSTs the webhook (requests), then dispatches `payload_processed`; the intake
service marks the message done. No outbox (an event lost between commit and publish stays lost), no
idempotency (a redelivered event uploads and notifies again), no retries or dead letters, no leases,
no validation, metrics, tracing or graceful shutdown. Same broker, database, S3 server and webhook as
the project's run; `get_message` answers in the project's shape so one client measures both.
"""

import json
import uuid
from datetime import UTC, datetime

import boto3
import requests
from nameko.dependency_providers import Config
from nameko.events import EventDispatcher, event_handler
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from sqlalchemy import JSON, DateTime, String, create_engine, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from common.db import tls_of


class Base(DeclarativeBase):
    pass


class Message(Base):
    __tablename__ = "bare_messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    message: Mapped[str] = mapped_column(String)
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Database(DependencyProvider):
    """nameko-sqlalchemy's pattern in a few lines: one engine, a session per worker, closed after."""

    def setup(self):
        # the URL's sslmode as the project's services read it: both pipelines talk to PostgreSQL alike
        url, connect_args = tls_of(self.container.config["DATABASE_URL"])
        self.engine = create_engine(url, pool_size=10, max_overflow=10, connect_args=connect_args)
        Base.metadata.create_all(self.engine)
        self.sessions = {}

    def get_dependency(self, worker_ctx):
        self.sessions[worker_ctx] = session = Session(self.engine)
        return session

    def worker_teardown(self, worker_ctx):
        self.sessions.pop(worker_ctx).close()


class S3(DependencyProvider):
    def setup(self):
        config = self.container.config
        self.client = boto3.client(
            "s3",
            endpoint_url=config["S3_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id=config["S3_ACCESS_KEY_ID"],
            aws_secret_access_key=config["S3_SECRET_ACCESS_KEY"],
        )

    def get_dependency(self, worker_ctx):
        return self.client


class BareMessageService:
    name = "bare_message_service"

    db = Database()
    dispatch = EventDispatcher()

    @rpc
    def receive_message(self, event):
        now = datetime.now(UTC)
        message = Message(
            id=str(uuid.uuid4()),
            message=event["message"],
            payload=event.get("payload", {}),
            status="pending",
            created_at=now,
            updated_at=now,
        )
        self.db.add(message)
        self.db.commit()
        self.dispatch("heavy_payload_event", {"message_id": message.id, "payload": message.payload})
        return {"id": message.id, "status": "pending"}

    @rpc
    def get_message(self, message_id):
        message = self.db.get(Message, message_id)
        return {
            "id": message.id,
            "status": message.status,
            "created_at": message.created_at.isoformat(),
            "updated_at": message.updated_at.isoformat(),
        }

    @event_handler("bare_time_consuming_service", "payload_processed")
    def on_payload_processed(self, outcome):
        self.db.execute(
            update(Message)
            .where(Message.id == outcome["message_id"])
            .values(status="done", updated_at=datetime.now(UTC))
        )
        self.db.commit()


class BareTimeConsumingService:
    name = "bare_time_consuming_service"

    config = Config()
    s3 = S3()
    dispatch = EventDispatcher()

    @event_handler("bare_message_service", "heavy_payload_event")
    def time_consuming_event_handler(self, event):
        key = f"payloads/{event['message_id']}.json"
        self.s3.put_object(
            Bucket=self.config["S3_BUCKET"], Key=key, Body=json.dumps(event["payload"]).encode()
        )
        requests.post(
            self.config["WEBHOOK_URL"],
            json={"message_id": event["message_id"], "object_key": key, "outcome": "uploaded"},
            headers={"Idempotency-Key": event["message_id"]},  # how the bench's sink counts notifications
            timeout=10,
        ).raise_for_status()
        self.dispatch("payload_processed", {"message_id": event["message_id"], "status": "done"})
