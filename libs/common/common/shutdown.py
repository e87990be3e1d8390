"""Graceful shutdown: on SIGTERM, stop taking work, finish what is in flight, ack it, then exit.

Two things `nameko run` (2.14) gets wrong by itself, both shown by tests/ops/test_graceful_shutdown.py:

1. On `container.stop()` nameko cancels its consumers, and once the last one is cancelled its
   queue consumer closes the AMQP connection at once, while the workers it started still run. The
   broker requeues their unacked messages, another instance runs them a second time, and the acks
   of the finishing workers go nowhere. (A service whose queue consumer also serves an RpcProxy
   reply queue escapes by luck: that consumer stays until the dependencies stop.)
2. `container.stop()` waits for in-flight workers with no deadline. A worker blocked on an RPC
   reply that never comes (RpcProxy has no timeout) keeps the process alive after SIGTERM until
   the orchestrator's SIGKILL: the "nameko run does not stop" symptom.

`GracefulShutdown` keeps the connection open until the container has no worker left, so each
in-flight message is acked by the instance that ran it and runs exactly once; and after
SHUTDOWN_TIMEOUT seconds (default 20: under Kubernetes' 30 s grace period) it abandons the workers
still running. Their messages are not acked, so the broker gives them to another instance:
at-least-once, nothing lost. New deliveries stop as soon as the consumers are cancelled.
"""

import logging
import time

from nameko.extensions import DependencyProvider
from nameko.messaging import QueueConsumer

SHUTDOWN_TIMEOUT_KEY = "SHUTDOWN_TIMEOUT"
DEFAULT_SHUTDOWN_TIMEOUT = 20

log = logging.getLogger(__name__)


class GracefulShutdown(DependencyProvider):
    def setup(self):
        timeout = float(self.container.config.get(SHUTDOWN_TIMEOUT_KEY) or DEFAULT_SHUTDOWN_TIMEOUT)
        for extension in self.container.subextensions:
            if isinstance(extension, QueueConsumer):
                # An instance attribute shadows the method for this container's consumer only.
                extension.on_iteration = DrainBeforeClosing(extension, self.container, timeout)


class DrainBeforeClosing:
    """Replaces `QueueConsumer.on_iteration`, which kombu's consume loop calls at least once a second."""

    def __init__(self, queue_consumer: QueueConsumer, container, timeout: float):
        self.queue_consumer = queue_consumer
        self.container = container
        self.timeout = timeout
        self.stopping_since = None
        self.abandoned = False

    def __call__(self):
        consumer = self.queue_consumer
        if consumer._pending_remove_providers and self.stopping_since is None:
            # nameko only removes consumers when the container stops.
            self.stopping_since = time.monotonic()
            in_flight = len(self.container._worker_threads)
            log.info(
                "stopping: consumers cancelled, %s worker(s) in flight, waiting up to %ss",
                in_flight,
                self.timeout,
                extra={"in_flight": in_flight},
            )
        consumer._cancel_consumers_if_requested()
        workers = self.container._worker_threads
        overdue = self.stopping_since is not None and time.monotonic() - self.stopping_since > self.timeout
        if overdue and workers and not self.abandoned:
            self.abandon(workers)
        if not consumer._consumers and not workers:
            consumer.should_stop = True

    def abandon(self, workers: dict):
        self.abandoned = True
        log.warning(
            "shutdown timeout: abandoning %s worker(s); their messages are not acked, so the broker "
            "redelivers them to another instance",
            len(workers),
            extra={"abandoned": [worker_ctx.call_id for worker_ctx in workers]},
        )
        for worker in list(workers.values()):
            worker.kill()
