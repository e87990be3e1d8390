"""Graceful shutdown: on SIGTERM, stop taking work, finish what is in flight, ack it, then exit.

Three things `nameko run` (2.14) gets wrong by itself, each shown by tests/ops:

1. On `container.stop()` nameko cancels its consumers, and once the last one is cancelled its
   queue consumer closes the AMQP connection at once, while the workers it started still run. The
   broker requeues their unacked messages, another instance runs them a second time, and the acks
   of the finishing workers go nowhere. (A service whose queue consumer also serves an RpcProxy
   reply queue escapes by luck: that consumer stays until the dependencies stop.)
2. `container.stop()` waits for in-flight workers with no deadline. A worker blocked on an RPC
   reply that never comes (RpcProxy has no timeout) keeps the process alive after SIGTERM until
   the orchestrator's SIGKILL: the "nameko run does not stop" symptom.
3. While the broker is unreachable, `stop()` waits forever for the consumer thread (busy
   reconnecting) to cancel its consumers: the same symptom.

`GracefulShutdown` keeps the connection open until the container has no worker left, so each
in-flight message is acked by the instance that ran it and runs exactly once (1). Under
`nameko run` it also starts a watchdog on SIGTERM: after SHUTDOWN_TIMEOUT seconds (default 20,
under Kubernetes' 30 s grace period) it abandons the workers still running (2): their messages are
not acked, so the broker gives them to another instance, nothing is lost. If the process still has
not stopped ABANDON_GRACE seconds later (3), it logs why and exits with status 1.

Abandoning a worker kills its greenthread, which skips nameko's worker teardown, so the watchdog
does that part itself (`abandon`): the worker's database sessions are invalidated (their
connections closed: the database rolls back and drops the worker's locks at once, not when the
process exits), every dependency's `worker_teardown` runs, and a `@timer` waiting for that worker
is released (nameko's Timer waits for its worker before it can stop: without this, a service with
a timer never stopped after an abandon). A process that abandoned work exits with status
EXIT_ABANDONED (75, sysexits' EX_TEMPFAIL: the work is redelivered, not done), 0 otherwise.
"""

import atexit
import logging
import os
import signal
import sys

import eventlet
from greenlet import GreenletExit
from nameko.extensions import DependencyProvider
from nameko.messaging import QueueConsumer
from nameko.timer import Timer

from common.settings import CommonSettings, settings_of

ABANDON_GRACE = 5
EXIT_ABANDONED = 75

log = logging.getLogger(__name__)

_containers = []  # every container in this process that uses GracefulShutdown
_watchdog_installed = False
_abandoned = 0  # workers abandoned in this process


class GracefulShutdown(DependencyProvider):
    def setup(self):
        timeout = settings_of(self.container, CommonSettings).SHUTDOWN_TIMEOUT
        for extension in self.container.subextensions:
            if isinstance(extension, QueueConsumer):
                # An instance attribute shadows the method for this container's consumer only.
                extension.on_iteration = DrainBeforeClosing(extension, self.container)
        _containers.append(self.container)
        install_watchdog(timeout)

    def stop(self):
        self.discard()

    def kill(self):
        self.discard()

    def discard(self):
        if self.container in _containers:
            _containers.remove(self.container)


class DrainBeforeClosing:
    """Replaces `QueueConsumer.on_iteration`, which kombu's consume loop calls at least once a second."""

    def __init__(self, queue_consumer: QueueConsumer, container):
        self.queue_consumer = queue_consumer
        self.container = container
        self.stopping = False

    def __call__(self):
        consumer = self.queue_consumer
        if consumer._pending_remove_providers and not self.stopping:
            # nameko only removes consumers when the container stops.
            self.stopping = True
            in_flight = len(self.container._worker_threads)
            log.info(
                "stopping: consumers cancelled, %s worker(s) in flight",
                in_flight,
                extra={"in_flight": in_flight},
            )
        consumer._cancel_consumers_if_requested()
        if not consumer._consumers and not self.container._worker_threads:
            consumer.should_stop = True


def install_watchdog(timeout: float):
    """Chains a watchdog to `nameko run`'s SIGTERM handler; does nothing where no handler is set
    (tests running containers in-process)."""
    global _watchdog_installed
    previous = signal.getsignal(signal.SIGTERM)
    if _watchdog_installed or not callable(previous):
        return
    _watchdog_installed = True
    atexit.register(exit_status)

    def on_sigterm(signum, frame):
        previous(signum, frame)
        # Like nameko's handler: a signal handler cannot block on eventlet, so it spawns.
        eventlet.spawn_n(watchdog, timeout)

    signal.signal(signal.SIGTERM, on_sigterm)


def watchdog(timeout: float):
    global _abandoned
    eventlet.sleep(timeout)
    for container in list(_containers):
        workers = list(container._worker_threads.items())
        if workers:
            log.warning(
                "shutdown timeout (%ss): abandoning %s worker(s); their messages are not acked, so the "
                "broker redelivers them to another instance",
                timeout,
                len(workers),
                extra={"abandoned": [worker_ctx.call_id for worker_ctx, _ in workers]},
            )
            for worker_ctx, worker in workers:
                abandon(container, worker_ctx, worker)
            _abandoned += len(workers)
    eventlet.sleep(ABANDON_GRACE)
    log.error(
        "still not stopped %ss after SIGTERM (is the broker unreachable?): exiting",
        timeout + ABANDON_GRACE,
    )
    logging.shutdown()
    os._exit(1)


def abandon(container, worker_ctx, worker):
    """Kills a worker and does what its teardown would have done (see the module's docstring)."""
    worker.kill()
    try:
        with eventlet.Timeout(1, False):  # a killed worker may still roll back on its way out
            worker.wait()
    except GreenletExit:
        pass
    # Looked up, not imported: a service without a database (sender_service) never loads SQLAlchemy.
    worker_database = getattr(sys.modules.get("common.db"), "WorkerDatabase", None)
    for provider in container.dependencies:
        dependency = getattr(worker_ctx.service, provider.attr_name, None)
        if worker_database is not None and isinstance(dependency, worker_database):
            dependency.invalidate()
    for provider in container.dependencies:
        try:
            provider.worker_teardown(worker_ctx)
        except Exception:  # e.g. state bound to the dead greenthread's own context (WorkerLog's)
            log.debug("worker_teardown of %s after an abandon failed", provider, exc_info=True)
    entrypoint = worker_ctx.entrypoint
    if isinstance(entrypoint, Timer) and not entrypoint.worker_complete.ready():
        entrypoint.worker_complete.send()


def exit_status():
    """At exit (atexit, after `nameko run` returned): the status says whether work was abandoned."""
    if _abandoned:
        log.warning("exiting with status %s: %s worker(s) abandoned", EXIT_ABANDONED, _abandoned)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_ABANDONED)
