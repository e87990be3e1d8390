"""Structured logs: one JSON object per line, and one line per worker that says how it went.

`JsonFormatter` goes in a service's LOGGING config (``"()": common.logs.JsonFormatter``).
`WorkerLog` is a DependencyProvider: it logs each worker's service, entrypoint, outcome and
duration, and while a worker runs every log line it emits (nameko's own included) carries
nameko's call-id stack. The stack travels with RPC calls and events, so grepping one call id
follows a request across every service it crossed.
"""

import contextvars
import json
import logging
import time
from datetime import UTC, datetime

from nameko.extensions import DependencyProvider
from opentelemetry import trace

WORKER_LOGGER = "nameko.worker"

# Set while a worker runs; greenthreads each have their own context, so workers never mix.
current_worker = contextvars.ContextVar("current_worker", default=None)

STANDARD_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, message, the running worker's
    call ids, the active span's trace and span ids (see common.tracing), and whatever was passed
    as ``extra=``."""

    def __init__(self, service: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.service = service
        # The lines carry no thread or process fields, so records need not collect them. Under
        # eventlet each worker is a new greenthread, and its first record's `current_thread()`
        # lists every thread and wraps the greenthread: a third of a worker's log line (measured as
        # bench/provider_probe.py measures WorkerLog).
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "service": self.service,
            "message": record.getMessage(),
        }
        worker = current_worker.get()
        if worker is not None:
            line.update(worker)
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["trace_id"], line["span_id"] = format(span.trace_id, "032x"), format(span.span_id, "016x")
        line.update({key: value for key, value in vars(record).items() if key not in STANDARD_RECORD_FIELDS})
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps({key: value for key, value in line.items() if value is not None}, default=str)


def configure_json_logging(service: str, level: str = "INFO"):
    """For programs that are not `nameko run` (the cron job, scripts): JSON lines on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(service=service))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def entrypoint_kind(worker_ctx) -> str:
    return type(worker_ctx.entrypoint).__name__


def outcome_of(worker_ctx, exc_info) -> str:
    if exc_info is None:
        return "ok"
    if isinstance(exc_info[1], worker_ctx.entrypoint.expected_exceptions):
        return "rejected"  # the caller's fault: an expected exception, e.g. InvalidInput
    return "error"


class WorkerLog(DependencyProvider):
    """Logs one line per worker and tags every line a worker logs with its call ids.

    Injects a logger, so a service can add its own lines: ``self.log.info("stored", extra={...})``.
    """

    def setup(self):
        self.logger = logging.getLogger(WORKER_LOGGER)
        self.service_logger = logging.getLogger(f"{self.container.service_name}.worker")
        self.started: dict = {}
        self.context_tokens: dict = {}

    def get_dependency(self, worker_ctx):
        return self.service_logger

    def worker_setup(self, worker_ctx):
        self.started[worker_ctx] = time.perf_counter()
        self.context_tokens[worker_ctx] = current_worker.set(
            {
                "service": worker_ctx.service_name,
                "entrypoint": worker_ctx.entrypoint.method_name,
                "call_id": worker_ctx.call_id,
                "call_id_stack": worker_ctx.call_id_stack,
            }
        )

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self.started.pop(worker_ctx, None)
        outcome = outcome_of(worker_ctx, exc_info)
        level = logging.ERROR if outcome == "error" else logging.INFO
        if not self.logger.isEnabledFor(level):
            return  # LOG_LEVEL=WARNING: no line, so nothing to build for it
        duration_ms = round((time.perf_counter() - started) * 1000, 3) if started else None
        self.logger.log(
            level,
            "%s %s.%s %s",
            entrypoint_kind(worker_ctx),
            worker_ctx.service_name,
            worker_ctx.entrypoint.method_name,
            outcome,
            extra={
                "kind": entrypoint_kind(worker_ctx),
                "outcome": outcome,
                "duration_ms": duration_ms,
                "error": type(exc_info[1]).__name__ if exc_info else None,
            },
        )

    def worker_teardown(self, worker_ctx):
        self.started.pop(worker_ctx, None)
        token = self.context_tokens.pop(worker_ctx, None)
        if token is not None:
            current_worker.reset(token)
