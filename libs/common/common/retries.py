"""Event handlers that never ack and drop a message: it succeeds, is retried later, or is parked.

nameko 2.14's `EventHandler` acks a delivery whose handler raised (`requeue_on_error=False`), so the
event is gone; `requeue_on_error=True` redelivers it at once, forever. This `event_handler` does
what a consumer that keeps its promises needs instead, in `handle_result`, after the worker and
before the ack:

- success: ack.
- a permanent failure (an exception with `permanent = True`, or one of the handler's `permanent`
  exception types: an invalid event, a webhook's 4xx): park the event in the dead-letter queue with
  its reason, at once.
- any other failure (database down, webhook 5xx or timeout, S3 errors, a job another worker holds):
  publish a copy to the handler's retry queue for the next delay of `RETRY_DELAYS`, with the attempt
  number in the `x-attempt` header; after `RETRY_MAX_ATTEMPTS` attempts, park it.

The copy (retry or dead letter) is published with publisher confirms on nameko's pooled producer
connection, and only once the broker confirmed it is the original acked: a crash in between leaves
the original unacked, the broker delivers it again, and the duplicate is handled idempotently (or
parked again; replay yields one outcome). If the copy cannot be published the original is
requeued, never acked.

A retry queue (`<handler queue>.retry-<delay>s`, durable) has no consumer: RabbitMQ expires its
messages after `x-message-ttl` and dead-letters them through the default exchange back to the
handler queue. `nameko-topology` declares them with the handler queues.
"""

import logging
import uuid
from dataclasses import dataclass
from functools import partial

import nameko.events
from kombu import Queue
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import DependencyProvider

from common.dead_letters import DeadLetterQueue
from common.failpoints import failpoint
from common.metrics import DEAD_LETTERS_PARKED, RETRIES_SCHEDULED
from common.queues import durable_queue_arguments, with_queue_type
from common.settings import QueueSettings, RetrySettings, settings_of

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-attempt"
DELIVERY_HEADER = "x-delivery-id"  # the same for a delivery and all its retries


def delay_name(delay: float) -> str:
    return f"{delay:g}".replace(".", "_")


def retry_queue(handler_queue: str, delay: float, settings: QueueSettings) -> Queue:
    """Holds a retry for `delay` seconds, then hands it back to `handler_queue`."""
    arguments = durable_queue_arguments(settings)
    if arguments.get("x-queue-type") == "quorum":
        # A quorum queue dead-letters at most once unless told otherwise: a retry lost between its
        # queue and the handler's would be an event gone. (reject-publish: what at-least-once needs.)
        arguments |= {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    return Queue(
        f"{handler_queue}.retry-{delay_name(delay)}s",
        durable=True,
        queue_arguments={
            **arguments,
            "x-message-ttl": int(delay * 1000),
            "x-dead-letter-exchange": "",  # the default exchange: routes by queue name
            "x-dead-letter-routing-key": handler_queue,
        },
    )


def retry_queues(handler_queue: str, settings: RetrySettings) -> list[Queue]:
    """One per distinct delay of `RETRY_DELAYS` (seconds before each retry; the last one repeats)."""
    return [retry_queue(handler_queue, delay, settings) for delay in sorted(set(settings.RETRY_DELAYS))]


def attempt_of(message) -> int:
    try:
        return max(1, int((message.headers or {}).get(ATTEMPT_HEADER, 1)))
    except (TypeError, ValueError):
        return 1


def delivery_of(message) -> str:
    return str((message.headers or {}).get(DELIVERY_HEADER) or uuid.uuid4().hex)


def own_headers(message) -> dict:
    """The delivery's headers without the broker's (`x-death`...) and ours: nameko's context stays."""
    return {key: value for key, value in (message.headers or {}).items() if not key.startswith("x-")}


def is_permanent(error: BaseException, permanent: tuple) -> bool:
    return isinstance(error, permanent) or getattr(error, "permanent", False) is True


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class Attempt:
    """What a handler knows about its delivery: `final` means a failure now is parked, not retried.

    `delivery` identifies the delivery across its retries (a lease it took is still its own); a
    duplicate of the event, or a redelivery by the broker after a crash, is another delivery.
    """

    number: int
    max_attempts: int
    delivery: str = ""

    @property
    def final(self) -> bool:
        return self.number >= self.max_attempts


class EventHandler(nameko.events.EventHandler):
    def __init__(self, source_service, event_type, permanent=(), **kwargs):
        if kwargs.get("handler_type") == nameko.events.BROADCAST:
            raise ValueError("retries need a durable handler queue: not for BROADCAST handlers")
        if kwargs.get("requeue_on_error"):
            raise ValueError("requeue_on_error redelivers at once, forever: the retry queues replace it")
        self.permanent = tuple(permanent)
        super().__init__(source_service, event_type, **kwargs)

    def setup(self):
        self.settings = settings = settings_of(self.container, RetrySettings)
        super().setup()
        with_queue_type(self.queue, settings)  # quorum where QUEUE_TYPE says (common.queues)
        self.delays = settings.RETRY_DELAYS
        self.max_attempts = settings.RETRY_MAX_ATTEMPTS
        self.retry_queues = {queue.name: queue for queue in retry_queues(self.queue.name, settings)}
        self.dead_letters = DeadLetterQueue(self.container.config, settings, self.container.service_name)
        self.attempts: dict = {}

    def handle_message(self, body, message):
        # nameko's Consumer.handle_message, remembering which attempt the worker runs
        handle_result = partial(self.handle_result, message)
        try:
            worker_ctx = self.container.spawn_worker(
                self,
                (body,),
                {},
                context_data=self.unpack_message_headers(message),
                handle_result=handle_result,
            )
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)
            return
        # the worker greenthread has not run yet: spawning does not switch to it
        self.attempts[worker_ctx] = self.attempt_of(message)

    def attempt_of(self, message) -> Attempt:
        return Attempt(attempt_of(message), self.max_attempts, delivery_of(message))

    def attempt(self, worker_ctx) -> Attempt:
        return self.attempts.get(worker_ctx) or Attempt(1, self.max_attempts, uuid.uuid4().hex)

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        attempt = self.attempts.pop(worker_ctx, None) or self.attempt_of(message)
        if exc_info is not None:
            try:
                self.retry_or_park(message, exc_info[1], attempt)
            except Exception:
                log.exception("could not retry or park %s: requeued", self.queue.name)
                self.queue_consumer.requeue_message(message)
                return result, exc_info
        else:
            failpoint("consumer.before_ack")
        self.queue_consumer.ack_message(message)
        return result, exc_info

    def retry_or_park(self, message, error: BaseException, attempt: Attempt):
        body = message.decode()
        if is_permanent(error, self.permanent) or attempt.final:
            if is_permanent(error, self.permanent):
                reason = str(error) or describe(error)
            else:
                reason = f"gave up after {attempt.number} attempt(s): {describe(error)}"
            self.dead_letters.park(body, reason, self.source_service, self.event_type, queue=self.queue.name)
            DEAD_LETTERS_PARKED.labels(self.container.service_name, self.queue.name).inc()
            log.warning("parked %s: %s", self.queue.name, reason)
            failpoint("consumer.after_park")
            return
        delay = self.delays[min(attempt.number, len(self.delays)) - 1]
        queue = retry_queue(self.queue.name, delay, self.settings)
        self.dead_letters.publisher.publish(
            body,
            exchange="",
            routing_key=queue.name,
            declare=[queue],
            mandatory=True,
            headers={
                **own_headers(message),
                ATTEMPT_HEADER: attempt.number + 1,
                DELIVERY_HEADER: attempt.delivery,
            },
        )
        RETRIES_SCHEDULED.labels(self.container.service_name, self.queue.name).inc()
        log.warning(
            "%s failed (attempt %d of %d), retrying in %gs: %s",
            self.queue.name,
            attempt.number,
            attempt.max_attempts,
            delay,
            describe(error),
        )


event_handler = EventHandler.decorator


class Delivery(DependencyProvider):
    """Injects the worker's `Attempt` (attempt 1 of 1 for entrypoints without retries)."""

    def get_dependency(self, worker_ctx) -> Attempt:
        entrypoint = worker_ctx.entrypoint
        if isinstance(entrypoint, EventHandler):
            return entrypoint.attempt(worker_ctx)
        return Attempt(1, 1, uuid.uuid4().hex)
