"""Nameko's `rpc`, `RpcProxy` and `EventDispatcher`, publishing with a retry policy from the config.

Why: nameko 2.14 gives up publishing after 3 tries: `nameko.constants.DEFAULT_RETRY_POLICY` for the
publish (kombu's `Connection.ensure`) and `DEFAULT_TRANSPORT_OPTIONS` for reconnecting the pooled
connection it publishes on (kombu's `Connection.default_channel`). A worker whose RPC reply cannot be
published then kills its container (`ServiceContainer._handle_thread_exited`), so `nameko run` exits:
a broker outage of ~10 s while workers are busy costs processes and the requests they hold.
The reply publisher (`nameko.rpc.Responder`) takes no options, so the entrypoint below builds its
own; `RpcProxy` and `EventDispatcher` take the options as arguments.

The policy is the config key `PUBLISH_RETRY_POLICY`: the keywords of `kombu.Connection.ensure`
(`max_retries`, `interval_start`, `interval_step`, `interval_max`), used for both. Every retry is logged.

Use these in place of nameko's in every entrypoint of a service: two `rpc` flavours in one service
would make two consumers of its queue.
"""

from functools import partial
from logging import getLogger

import nameko.amqp.publish
import nameko.events
import nameko.rpc
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_RETRY_POLICY,
    DEFAULT_SERIALIZER,
    DEFAULT_TRANSPORT_OPTIONS,
    LOGIN_METHOD_CONFIG_KEY,
    SERIALIZER_CONFIG_KEY,
)
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import DependencyProvider

from common.metrics import PUBLISH_RETRIES
from common.queues import with_queue_type
from common.settings import CommonSettings, PublishSettings, settings_of

log = getLogger(__name__)


def log_retry(exc, interval):
    PUBLISH_RETRIES.inc()
    log.warning("broker unreachable (%r): publishing again in %ss", exc, interval)


def publish_options(settings: PublishSettings) -> dict:
    """Options for `Publisher` below that retry for as long as the settings say."""
    policy = {**DEFAULT_RETRY_POLICY, **settings.PUBLISH_RETRY_POLICY.model_dump(), "errback": log_retry}
    return {
        "retry_policy": policy,
        # connect_retries_timeout: kombu otherwise stops reconnecting after `connect_timeout` seconds
        "transport_options": {**DEFAULT_TRANSPORT_OPTIONS, **policy, "connect_retries_timeout": None},
    }


# One try and no reconnect loop, for a publisher whose caller retries by itself and must not block
# meanwhile (the outbox: its timer sends later what failed now).
PUBLISH_ONCE = {
    "retry_policy": {**DEFAULT_RETRY_POLICY, "max_retries": 0},
    "transport_options": {**DEFAULT_TRANSPORT_OPTIONS, "max_retries": 0},
}


class Publisher(nameko.amqp.publish.Publisher):
    """nameko's Publisher, which takes `transport_options` only as a class attribute, per instance."""

    def __init__(self, amqp_uri, transport_options=None, **options):
        super().__init__(amqp_uri, **options)
        if transport_options is not None:
            self.transport_options = transport_options


class Responder(nameko.rpc.Responder):
    def __init__(self, *args, publish_options: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.publish_options = publish_options

    def publisher_cls(self, amqp_uri, **options):
        return Publisher(amqp_uri, **self.publish_options, **options)


class RpcConsumer(nameko.rpc.RpcConsumer):
    def setup(self):
        super().setup()
        self.settings = settings_of(self.container, CommonSettings)
        self.publish_options = publish_options(self.settings)  # once, not per reply
        with_queue_type(self.queue, self.settings)  # quorum where QUEUE_TYPE says (common.queues)

    def handle_result(self, message, result, exc_info):
        # nameko.rpc.RpcConsumer.handle_result, with the publish options given to the Responder
        config = self.container.config
        responder = Responder(
            config[AMQP_URI_CONFIG_KEY],
            nameko.rpc.get_rpc_exchange(config),
            config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER),
            message,
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
            publish_options=self.publish_options,
        )
        result, exc_info = responder.send_response(result, exc_info)
        # The ack goes to the connection the request came on; after an outage that one is gone,
        # the broker redelivers the request and the (idempotent) worker runs again. nameko ignores
        # only amqp's ConnectionError here: a socket error (the broker restarting between the reply
        # and the ack) would escape the worker and kill the container, and `nameko run` with it.
        try:
            self.queue_consumer.ack_message(message)
        except OSError as error:
            log.warning("could not ack a request (%r): the broker redelivers it", error)
        return result, exc_info


class Rpc(nameko.rpc.Rpc):
    rpc_consumer = RpcConsumer()

    def handle_message(self, body, message):
        # nameko.rpc.Rpc.handle_message, keeping the request's AMQP correlation id on the worker
        # context: a redelivered request (its ack lost to a kill or a broker restart) keeps it,
        # while the worker's own call id is new each time. See `RequestId`.
        try:
            args, kwargs = body["args"], body["kwargs"]
        except KeyError:
            raise nameko.rpc.MalformedRequest("Message missing `args` or `kwargs`") from None
        self.check_signature(args, kwargs)
        handle_result = partial(self.handle_result, message)
        try:
            worker_ctx = self.container.spawn_worker(
                self,
                args,
                kwargs,
                context_data=self.unpack_message_headers(message),
                handle_result=handle_result,
            )
        except ContainerBeingKilled:
            self.rpc_consumer.requeue_message(message)
            return
        # The worker greenthread has not run yet: spawning does not switch to it.
        worker_ctx.correlation_id = message.properties.get("correlation_id")


rpc = Rpc.decorator


class RequestId(DependencyProvider):
    """The identity of the RPC request a worker handles: its AMQP correlation id, the same on every
    delivery of one request. None for other entrypoints (HTTP, events, timers)."""

    def get_dependency(self, worker_ctx):
        return getattr(worker_ctx, "correlation_id", None)


class MethodProxy(nameko.rpc.MethodProxy):
    publisher_cls = Publisher


class ServiceProxy(nameko.rpc.ServiceProxy):
    def __getattr__(self, name):
        return MethodProxy(self.worker_ctx, self.service_name, name, self.reply_listener, **self.options)


class RpcProxy(nameko.rpc.RpcProxy):
    def setup(self):
        super().setup()
        settings = settings_of(self.container, PublishSettings)
        self.publish_options = {**publish_options(settings), **self.options}  # once, not per worker

    def get_dependency(self, worker_ctx):
        return ServiceProxy(worker_ctx, self.target_service, self.rpc_reply_listener, **self.publish_options)


class EventDispatcher(nameko.events.EventDispatcher):
    publisher_cls = Publisher

    def setup(self):
        self.options = {**publish_options(settings_of(self.container, PublishSettings)), **self.options}
        super().setup()

    def get_dependency(self, worker_ctx):
        # nameko's reads the worker's context data into headers once, when it injects `dispatch`,
        # before any worker_setup: read it when dispatching, so the trace context common.tracing
        # sets (the worker's span, or the one an outbox row was written in) goes with the event.
        def dispatch(event_type, event_data):
            self.publisher.publish(
                event_data,
                exchange=self.exchange,
                routing_key=event_type,
                extra_headers=self.get_message_headers(worker_ctx),
            )

        return dispatch
