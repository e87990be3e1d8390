"""OpenTelemetry traces across services: a span per worker, W3C trace context through nameko's headers.

`Tracing` is a DependencyProvider: add ``tracing = Tracing()`` to a service class. Each worker
(RPC, event handler, HTTP, timer) runs inside a span named ``<service>.<method>`` whose parent is
the trace context the work arrived with:

- RPC calls and events: nameko 2.14 copies a worker's ``context_data`` into the AMQP headers of every
  RPC request and event the worker sends (``nameko.<key>`` headers), and the receiving worker gets
  them back as its ``context_data``. The worker's ``traceparent``/``tracestate`` are put there
  when it starts, so everything it sends carries its span as the parent. (The official nameko
  instrumentation needs nameko 3; this is the same idea for 2.14.)
- HTTP: the ``traceparent`` request header.

SQLAlchemy (each engine of the container), requests and botocore are instrumented, so a worker's
queries, webhook calls and S3 requests are child spans.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (config key, read from the environment by config.yaml)
is set: then nothing is set up and every hook returns at once, and nameko still passes an incoming
``traceparent`` on unchanged. On: spans are exported over OTLP (HTTP/protobuf, batched, to
``<endpoint>/v1/traces``), sampled at ``OTEL_TRACES_SAMPLER_ARG`` (a ratio, default 1.0) for new
traces and as the parent decided for continued ones. The provider is per process (one service per
``nameko run``): the first container to start sets it up.
"""

import contextvars
import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING

import nameko.events
import nameko.rpc
import nameko.timer
from nameko.extensions import DependencyProvider
from nameko.web.handlers import HttpRequestHandler
from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from common.logs import outcome_of
from common.settings import CommonSettings, settings_of

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

INSTRUMENTATION_NAME = "common.tracing"

log = logging.getLogger(__name__)

# The worker running in this greenthread, for `continued` (each greenthread has its own context).
_current_worker = contextvars.ContextVar("tracing_worker_ctx", default=None)

_provider = None  # the process's TracerProvider, once set up
_traced_engines: set = set()


def trace_fields() -> set[str]:
    """The keys the trace context travels under (traceparent, tracestate, baggage)."""
    return set(propagate.get_global_textmap().fields)


def configure(settings: CommonSettings, service_name: str):
    """Sets up the process's TracerProvider, OTLP exporter and instrumentations once; None when off."""
    global _provider
    endpoint = (settings.OTEL_EXPORTER_OTLP_ENDPOINT or "").strip()
    if not endpoint:
        return None
    if _provider is not None:
        return _provider

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.OTEL_TRACES_SAMPLER_ARG)),
    )
    # The endpoint is a base URL, as the OTEL_EXPORTER_OTLP_ENDPOINT variable means it.
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces"))
    )
    trace.set_tracer_provider(provider)
    RequestsInstrumentor().instrument(tracer_provider=provider)
    BotocoreInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    log.info(
        "tracing: spans to %s, sampling %s",
        endpoint,
        settings.OTEL_TRACES_SAMPLER_ARG,
        extra={"otlp_endpoint": endpoint},
    )
    return provider


def trace_engine(engine: "Engine") -> None:
    """Child spans for every statement on `engine` (created before tracing was configured)."""
    from opentelemetry import metrics
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    if engine in _traced_engines:
        return
    connections = metrics.get_meter(INSTRUMENTATION_NAME).create_up_down_counter(
        "db.client.connections.usage"
    )
    EngineTracer(trace.get_tracer("opentelemetry.instrumentation.sqlalchemy"), engine, connections)
    _traced_engines.add(engine)


def span_kind(entrypoint) -> SpanKind:
    if isinstance(entrypoint, nameko.rpc.Rpc | HttpRequestHandler):
        return SpanKind.SERVER
    if isinstance(entrypoint, nameko.events.EventHandler):
        return SpanKind.CONSUMER
    return SpanKind.INTERNAL  # timers


def span_attributes(worker_ctx) -> dict:
    entrypoint = worker_ctx.entrypoint
    attributes = {
        "nameko.service": worker_ctx.service_name,
        "nameko.entrypoint": entrypoint.method_name,
        "nameko.entrypoint.kind": type(entrypoint).__name__,
        "nameko.call_id": worker_ctx.call_id,
    }
    if isinstance(entrypoint, nameko.rpc.Rpc):
        attributes.update({"rpc.system": "nameko", "rpc.service": worker_ctx.service_name})
        attributes["rpc.method"] = entrypoint.method_name
    elif isinstance(entrypoint, nameko.events.EventHandler):
        attributes.update(
            {
                "messaging.system": "rabbitmq",
                "messaging.destination.name": f"{entrypoint.source_service}.events",
                "messaging.rabbitmq.destination.routing_key": entrypoint.event_type,
            }
        )
    elif isinstance(entrypoint, HttpRequestHandler):
        request = worker_ctx.args[0]
        attributes.update(
            {"http.request.method": request.method, "http.route": entrypoint.url, "url.path": request.path}
        )
    return attributes


def incoming_carrier(worker_ctx):
    if isinstance(worker_ctx.entrypoint, HttpRequestHandler):
        return worker_ctx.args[0].headers
    return worker_ctx.data


def http_status(worker_ctx, result, exc_info) -> int:
    entrypoint = worker_ctx.entrypoint
    if exc_info is not None:
        return entrypoint.response_from_exception(exc_info[1]).status_code
    return entrypoint.response_from_result(result).status_code


def use_trace_context(worker_ctx, carrier: dict) -> None:
    """What the worker sends from now on carries `carrier`'s trace context."""
    for key in trace_fields():
        worker_ctx.data.pop(key, None)
    worker_ctx.data.update({key: value for key, value in carrier.items() if key in trace_fields()})


def current_carrier() -> dict:
    """The running span's trace context as headers (``traceparent``...); empty when there is none."""
    carrier: dict = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def continued(carrier: dict | None):
    """Within the block, the RPC calls and events the running worker sends carry `carrier`'s trace
    context instead of the worker's own: for work recorded by one worker and sent by another (the
    outbox relay), so the trace goes on from the request that recorded it."""
    worker_ctx = _current_worker.get()
    if not carrier or worker_ctx is None:
        yield
        return
    saved = {key: worker_ctx.data[key] for key in trace_fields() if key in worker_ctx.data}
    use_trace_context(worker_ctx, carrier)
    try:
        yield
    finally:
        use_trace_context(worker_ctx, saved)


# The outbox row keeps the trace context beside the event under this key; the relay takes it out.
OUTBOX_TRACE_KEY = "_trace_context"


def with_trace_context(event: dict) -> dict:
    """`event` plus the running span's trace context, to store in an outbox row."""
    carrier = current_carrier()
    return {**event, OUTBOX_TRACE_KEY: carrier} if carrier else event


def dispatch_with_trace_context(dispatch, event_type: str, stored: dict) -> None:
    """Dispatches an outbox row's event (without its stored trace context) in that trace context."""
    event = dict(stored)
    carrier = event.pop(OUTBOX_TRACE_KEY, None)
    with continued(carrier):
        dispatch(event_type, event)


class Tracing(DependencyProvider):
    """A span per worker, continuing the trace the work came with. Injects a `Tracer` for extra spans."""

    def setup(self):
        self.provider = configure(settings_of(self.container, CommonSettings), self.container.service_name)
        # Once, not per worker: the SDK's get_tracer builds a new Tracer on every call (a third of
        # the hooks' time with tracing on). Off, it is the API's proxy, which follows the global
        # provider if one is set later.
        self.tracer = trace.get_tracer(INSTRUMENTATION_NAME)
        self.workers: dict = {}

    def start(self):
        if self.provider is None:
            return
        # Every provider's setup() has run by now: the Database providers have their engines.
        engines = [getattr(dependency, "engine", None) for dependency in self.container.dependencies]
        if any(engines):
            # Imported here: a service without a database (sender_service) never loads SQLAlchemy.
            from sqlalchemy.engine import Engine

            for engine in engines:
                if isinstance(engine, Engine):
                    trace_engine(engine)

    def stop(self):
        if self.provider is not None:
            self.provider.force_flush(timeout_millis=5000)  # the last workers' spans, before exiting

    def get_dependency(self, worker_ctx):
        return self.tracer

    def worker_setup(self, worker_ctx):
        if self.provider is None:
            return
        parent = propagate.extract(incoming_carrier(worker_ctx))
        span = self.tracer.start_span(
            f"{worker_ctx.service_name}.{worker_ctx.entrypoint.method_name}",
            context=parent,
            kind=span_kind(worker_ctx.entrypoint),
            attributes=span_attributes(worker_ctx),
        )
        token = context.attach(trace.set_span_in_context(span, parent))
        use_trace_context(worker_ctx, current_carrier())
        self.workers[worker_ctx] = (span, token, _current_worker.set(worker_ctx))

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        active = self.workers.get(worker_ctx) if self.provider is not None else None
        if active is None:
            return
        span = active[0]
        outcome = outcome_of(worker_ctx, exc_info)
        span.set_attribute("nameko.outcome", outcome)
        if isinstance(worker_ctx.entrypoint, HttpRequestHandler):
            span.set_attribute("http.response.status_code", http_status(worker_ctx, result, exc_info))
        if outcome == "error":
            span.record_exception(exc_info[1])
            span.set_status(Status(StatusCode.ERROR, type(exc_info[1]).__name__))

    def worker_teardown(self, worker_ctx):
        active = self.workers.pop(worker_ctx, None) if self.provider is not None else None
        if active is None:
            return
        span, token, worker_token = active
        span.end()
        context.detach(token)
        _current_worker.reset(worker_token)
