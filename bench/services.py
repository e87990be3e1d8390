"""Baselines the project is measured against, run with plain `nameko run` like the services.

`echo_service` is the bare Nameko RPC service (nameko's own `rpc`, no dependencies); the two relays
dispatch events with nameko's `EventDispatcher` and with the project's (`common.messaging`), and
`event_sink` counts what it handles.
"""

import nameko.events
import nameko.rpc

from common.messaging import EventDispatcher


class EchoService:
    name = "echo_service"

    @nameko.rpc.rpc
    def echo(self, value):
        return value


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
