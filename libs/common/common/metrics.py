"""Prometheus metrics for every entrypoint, served over HTTP for scraping.

`Metrics` is a DependencyProvider: add ``metrics = Metrics()`` to a service class. It counts
calls by outcome, times them and tracks how many workers run right now, from nameko's worker
hooks, so entrypoints need no code of their own.

The port comes from the ``METRICS_PORT`` config key: a fixed port for containers (each has its
own network namespace); ``0`` (the default) lets the OS pick a free one, so several instances
on one machine never collide: each logs the port it got. Empty (null): no endpoint.
"""

import logging
import time

from nameko.extensions import DependencyProvider
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

from common.logs import entrypoint_kind, outcome_of
from common.settings import CommonSettings, settings_of

log = logging.getLogger(__name__)

LABELS = ["service", "entrypoint", "kind"]
CALLS = Counter(
    "nameko_entrypoint_calls", "Workers run, by outcome (ok, rejected, error)", [*LABELS, "outcome"]
)
ERRORS = Counter("nameko_entrypoint_errors", "Workers that raised an unexpected exception", LABELS)
LATENCY = Histogram("nameko_entrypoint_latency_seconds", "Time from worker setup to result", LABELS)
IN_FLIGHT = Gauge("nameko_workers_in_flight", "Workers running now", ["service"])

# What the messaging code does on the side, counted where it happens (common.retries, common.messaging).
DEAD_LETTERS_PARKED = Counter(
    "nameko_dead_letters_parked", "Events parked in the dead-letter queue", ["service", "queue"]
)
RETRIES_SCHEDULED = Counter(
    "nameko_event_retries_scheduled", "Failed events published to a retry queue", ["service", "queue"]
)
PUBLISH_RETRIES = Counter(
    "nameko_publish_retries", "Publishes tried again because the broker was unreachable"
)

# One endpoint per process, whatever number of service containers it hosts: the registry is global.
_server = None


def serve_metrics(port: int, address: str = "0.0.0.0") -> int:
    """Starts the process's metrics endpoint once; returns the port it listens on."""
    global _server
    if _server is None:
        _server, _ = start_http_server(port, addr=address, registry=REGISTRY)
        log.info(
            "metrics on http://%s:%s/metrics",
            address,
            _server.server_port,
            extra={"metrics_port": _server.server_port},
        )
    return _server.server_port


class Metrics(DependencyProvider):
    def setup(self):
        self.started: dict = {}
        self.port = None
        # A metric's child for a set of labels, looked up once: prometheus_client's `labels()`
        # checks and locks on every call, and this runs several times per worker.
        self.children: dict = {}
        self.in_flight = IN_FLIGHT.labels(self.container.service_name)
        settings = settings_of(self.container, CommonSettings)
        if settings.METRICS_PORT is not None:
            self.port = serve_metrics(settings.METRICS_PORT, settings.METRICS_ADDRESS)

    def child(self, metric, *labels):
        key = (metric, *labels)
        if key not in self.children:
            self.children[key] = metric.labels(*labels)
        return self.children[key]

    def worker_setup(self, worker_ctx):
        self.started[worker_ctx] = time.perf_counter()
        self.in_flight.inc()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        labels = (worker_ctx.service_name, worker_ctx.entrypoint.method_name, entrypoint_kind(worker_ctx))
        outcome = outcome_of(worker_ctx, exc_info)
        self.child(CALLS, *labels, outcome).inc()
        if outcome == "error":
            self.child(ERRORS, *labels).inc()
        started = self.started.get(worker_ctx)
        if started is not None:
            self.child(LATENCY, *labels).observe(time.perf_counter() - started)

    def worker_teardown(self, worker_ctx):
        self.started.pop(worker_ctx, None)
        self.in_flight.dec()
