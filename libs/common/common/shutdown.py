"""Graceful shutdown: on SIGTERM, stop taking work, finish what is in flight, ack it, then exit.

What nameko 2.14 does by itself on `container.stop()`: it cancels its consumers, and once the last
consumer is cancelled its queue consumer closes the AMQP connection at once, while the workers it
started are still running. The broker then requeues their unacked messages, another instance runs
them a second time, and the acks sent by the finishing workers go nowhere. Services whose
QueueConsumer also serves an RpcProxy reply queue escape this by luck (that consumer stays until
the dependencies stop); a plain RPC or event-handler service does not.

`GracefulShutdown` keeps the connection open until the container has no worker left, so each
in-flight message is acked by the instance that ran it and runs exactly once. New deliveries stop
as soon as the consumers are cancelled: the broker sends them to the other instances.
"""

import logging

from nameko.extensions import DependencyProvider
from nameko.messaging import QueueConsumer

log = logging.getLogger(__name__)


class GracefulShutdown(DependencyProvider):
    def setup(self):
        for extension in self.container.subextensions:
            if isinstance(extension, QueueConsumer):
                # An instance attribute shadows the method for this container's consumer only.
                extension.on_iteration = DrainBeforeClosing(extension, self.container)


class DrainBeforeClosing:
    """Replaces `QueueConsumer.on_iteration`, called by kombu's consume loop at least once a second."""

    def __init__(self, queue_consumer: QueueConsumer, container):
        self.queue_consumer = queue_consumer
        self.container = container
        self.draining = False

    def __call__(self):
        consumer = self.queue_consumer
        consumer._cancel_consumers_if_requested()
        if consumer._consumers:
            return
        in_flight = len(self.container._worker_threads)
        if in_flight and not self.draining:
            self.draining = True
            log.info(
                "consumers cancelled; waiting for %s in-flight worker(s) before closing the connection",
                in_flight,
                extra={"in_flight": in_flight},
            )
        if not in_flight:
            consumer.should_stop = True
