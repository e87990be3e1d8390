"""Baselines the project is measured against, run with plain `nameko run` like the services.

`echo_service` is the bare Nameko RPC service (nameko's own `rpc`, no dependencies);
`receipt_echo` the same with the receipt a first version would write; the two relays dispatch
events with nameko's `EventDispatcher` and with the project's (`common.messaging`), and
`event_sink` counts what it handles.
"""

import json
import os
from datetime import UTC, datetime

import nameko.events
import nameko.rpc
from nameko.extensions import DependencyProvider
from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, create_engine, insert

from common.messaging import EventDispatcher


class EchoService:
    name = "echo_service"

    @nameko.rpc.rpc
    def echo(self, value):
        return value


RECEIPTS = Table(
    "receipts",
    MetaData(),
    Column("event_id", String(128), primary_key=True),
    Column("event", Text),
    Column("received_at", DateTime(timezone=True)),
)


class BareReceipts(DependencyProvider):
    """The engine on `RECEIPT_ECHO_DATABASE_URL` with SQLAlchemy's defaults (each call takes a pooled
    connection), as a first version would have it: no migrations, no lock-retry, no check of the
    id or the JSON."""

    def setup(self):
        self.engine = create_engine(os.environ["RECEIPT_ECHO_DATABASE_URL"])
        RECEIPTS.metadata.create_all(self.engine)

    def get_dependency(self, worker_ctx):
        return self.engine


class ReceiptEcho:
    """The echo writing the receiver's receipt (one INSERT and COMMIT): the baseline for the
    receiver's receipt row, so its ratio shows the project's overhead and not the write's."""

    name = "receipt_echo"

    engine = BareReceipts()

    @nameko.rpc.rpc
    def receive_event(self, event):
        with self.engine.begin() as connection:
            connection.execute(
                insert(RECEIPTS).values(
                    event_id=event["id"], event=json.dumps(event), received_at=datetime.now(UTC)
                )
            )
        return f"Event Received: {event}"


class EchoRelay:
    """Two hops with nameko's own RpcProxy: the baseline for sender_service -> receiver_service."""

    name = "echo_relay"

    echo_service = nameko.rpc.RpcProxy("echo_service")

    @nameko.rpc.rpc
    def relay(self, value):
        return self.echo_service.echo(value)


class BareRelay:
    name = "bare_relay"

    dispatch = nameko.events.EventDispatcher()

    @nameko.rpc.rpc
    def dispatch_many(self, count):
        for index in range(count):
            self.dispatch("tick", {"index": index})


class ProjectRelay:
    name = "project_relay"

    dispatch = EventDispatcher()

    @nameko.rpc.rpc
    def dispatch_many(self, count):
        for index in range(count):
            self.dispatch("tick", {"index": index})


class EventSink:
    name = "event_sink"

    handled = {"bare_relay": 0, "project_relay": 0}

    @nameko.events.event_handler("bare_relay", "tick")
    def on_bare(self, payload):
        EventSink.handled["bare_relay"] += 1

    @nameko.events.event_handler("project_relay", "tick")
    def on_project(self, payload):
        EventSink.handled["project_relay"] += 1

    @nameko.rpc.rpc
    def count(self, source):
        return EventSink.handled[source]
