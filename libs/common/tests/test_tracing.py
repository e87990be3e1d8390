"""Unit tests of common.tracing's pieces (no broker); tests/e2e/test_tracing.py follows real traces."""

import json
import logging
from types import SimpleNamespace

import pytest
from opentelemetry.sdk.trace import TracerProvider

from common import tracing
from common.logs import JsonFormatter
from common.settings import CommonSettings, SettingsError, validate

pytestmark = pytest.mark.unit

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
STORED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_without_an_endpoint_tracing_is_off_and_leaves_the_context_untouched():
    provider = tracing.Tracing()
    provider.container = SimpleNamespace(config={"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, service_name="s")
    provider.setup()
    worker_ctx = SimpleNamespace(data={"traceparent": PARENT})

    provider.worker_setup(worker_ctx)
    provider.worker_result(worker_ctx)
    provider.worker_teardown(worker_ctx)

    assert provider.provider is None
    assert worker_ctx.data == {"traceparent": PARENT}  # nameko passes it on as it came


def log_line(formatter) -> dict:
    return json.loads(formatter.format(logging.makeLogRecord({"name": "t", "msg": "hello", "levelno": 20})))


def test_json_log_lines_carry_the_active_span_ids_and_only_then():
    formatter = JsonFormatter(service="s")
    tracer = TracerProvider().get_tracer("test")  # not the global provider: nothing else is affected

    with tracer.start_as_current_span("work") as span:
        inside = log_line(formatter)
    outside = log_line(formatter)

    context = span.get_span_context()
    assert (inside["trace_id"], inside["span_id"]) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert "trace_id" not in outside and "span_id" not in outside


def test_an_outbox_event_is_dispatched_in_the_trace_context_stored_with_it():
    worker_ctx = SimpleNamespace(data={"traceparent": PARENT, "call_id_stack": ["relay"]})
    sent = []
    token = tracing._current_worker.set(worker_ctx)
    try:
        tracing.dispatch_with_trace_context(
            lambda event_type, body: sent.append((event_type, body, dict(worker_ctx.data))),
            "heavy_payload_event",
            {"message_id": "m-1", "payload": 1, tracing.OUTBOX_TRACE_KEY: {"traceparent": STORED}},
        )
    finally:
        tracing._current_worker.reset(token)

    assert sent == [
        (
            "heavy_payload_event",
            {"message_id": "m-1", "payload": 1},
            {"traceparent": STORED, "call_id_stack": ["relay"]},
        )
    ]
    assert worker_ctx.data == {"traceparent": PARENT, "call_id_stack": ["relay"]}  # the relay's own, after


def test_an_outbox_row_written_without_a_span_stores_no_trace_context():
    assert tracing.with_trace_context({"message_id": "m-1"}) == {"message_id": "m-1"}


@pytest.mark.parametrize("value, ratio", [("0.25", 0.25), (0, 0.0), ("1", 1.0)])
def test_sampling_ratio(value, ratio):
    assert ratio == validate({"OTEL_TRACES_SAMPLER_ARG": value}, CommonSettings).OTEL_TRACES_SAMPLER_ARG


@pytest.mark.parametrize("value", ["half", "1.5", -0.1, None])
def test_a_sampling_ratio_outside_0_to_1_is_refused_at_start(value):
    with pytest.raises(SettingsError, match="^settings: OTEL_TRACES_SAMPLER_ARG: Input should be"):
        validate({"OTEL_TRACES_SAMPLER_ARG": value}, CommonSettings)
