"""One trace across services: POST /messages -> message_service -> time_consuming_service -> S3 ->
webhook -> payload_processed -> message_service, exported over OTLP by real `nameko run` processes
(the local runner) to a receiver in the test, with a real S3 API (moto's server) and webhook."""

import json
import secrets
import uuid

import pytest
import requests
import sqlalchemy
from nameko.standalone.rpc import ClusterRpcProxy
from pytest_httpserver import HTTPServer
from sqlalchemy.orm import Session

from testkit.localstack import running_stack
from testkit.otlp_receiver import OtlpReceiver, tree
from testkit.processes import wait_for


@pytest.fixture(scope="module")
def receiver():
    otlp = OtlpReceiver().start()
    yield otlp
    otlp.stop()


@pytest.fixture(scope="module")
def webhook():
    server = HTTPServer(threaded=True)
    server.start()
    server.expect_request("/hook", method="POST").respond_with_json({})
    yield server
    server.clear()
    server.stop()


@pytest.fixture(scope="module")
def stack(amqp_uri, postgres, tmp_path_factory, s3_server, receiver, webhook):
    env = {
        "S3_ENDPOINT_URL": s3_server,
        "S3_BUCKET": f"bucket-{uuid.uuid4().hex[:12]}",
        "S3_ACCESS_KEY_ID": "test",
        "S3_SECRET_ACCESS_KEY": "test",
        "WEBHOOK_URL": webhook.url_for("/hook"),
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export every 100 ms: the test waits less
    }
    with running_stack(
        amqp_uri,
        postgres,
        tmp_path_factory.mktemp("traced"),
        services=["message", "time_consuming", "sender", "receiver"],
        env=env,
    ) as local:
        yield local


def new_ids() -> tuple[str, str]:
    return secrets.token_hex(16), secrets.token_hex(8)


def spans_named(receiver, trace_id, *names):
    """The trace's spans once every name in `names` has arrived (None until then)."""
    spans = receiver.trace(trace_id)
    return spans if set(names) <= {span.name for span in spans} else None


def only(spans, name):
    matching = [span for span in spans if span.name == name]
    assert len(matching) == 1, tree(spans)
    return matching[0]


def test_one_trace_covers_the_http_request_the_event_storage_webhook_and_the_report(stack, receiver, webhook):
    trace_id, client_span_id = new_ids()
    web = f"http://{stack.instances['message-1'].web_address}"

    created = requests.post(
        f"{web}/messages",
        json={"message": "traced", "payload": {"order": 1}},
        headers={"traceparent": f"00-{trace_id}-{client_span_id}-01"},
        timeout=10,
    )
    assert created.status_code == 201
    spans = wait_for(
        lambda: spans_named(
            receiver,
            trace_id,
            "message_service.post_message",
            "time_consuming_service.time_consuming_event_handler",
            "message_service.on_payload_processed",
        ),
        message="the trace's spans",
    )

    post = only(spans, "message_service.post_message")
    handler = only(spans, "time_consuming_service.time_consuming_event_handler")
    report = only(spans, "message_service.on_payload_processed")
    upload = only(spans, "S3.PutObject")
    notify = next(span for span in spans if span.kind == "SPAN_KIND_CLIENT" and span.name.startswith("POST"))

    # the chain: client -> HTTP entrypoint -> event handler -> S3 + webhook -> payload_processed handler
    assert post.parent_span_id == client_span_id
    assert (post.service, post.attributes["http.route"], post.attributes["nameko.outcome"]) == (
        "message_service",
        "/messages",
        "ok",
    )
    assert handler.parent_span_id == post.span_id
    assert handler.service == "time_consuming_service"
    assert handler.attributes["messaging.rabbitmq.destination.routing_key"] == "heavy_payload_event"
    assert upload.parent_span_id == handler.span_id
    assert notify.parent_span_id == handler.span_id
    assert report.parent_span_id == handler.span_id
    assert report.attributes["messaging.rabbitmq.destination.routing_key"] == "payload_processed"
    # the database work of both ends is in the trace too
    statements = {
        span.parent_span_id for span in spans if any(key.startswith("db.") for key in span.attributes)
    }
    assert {post.span_id, handler.span_id, report.span_id} <= statements

    # the webhook received the trace context of its own client span
    hook_request = next(
        request for request, _ in webhook.log if request.json["message_id"] == created.json()["id"]
    )
    assert hook_request.headers["traceparent"].split("-")[1:3] == [trace_id, notify.span_id]

    # and the JSON log lines of the HTTP worker carry the trace and span ids
    log_lines = [
        json.loads(line)
        for line in stack.instances["message-1"].log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    worker_lines = [line for line in log_lines if line.get("call_id") == post.attributes["nameko.call_id"]]
    assert worker_lines
    assert {(line["trace_id"], line["span_id"]) for line in worker_lines} == {(trace_id, post.span_id)}


def test_an_event_relayed_from_the_outbox_later_continues_the_trace_that_stored_it(stack, receiver):
    """The outbox row keeps the trace context it was written in: the timer that relays it
    (after a failed dispatch or a crash) sends the event in that trace, not in its own."""
    from message.messages import PENDING, Message, OutboxEvent

    trace_id, stored_span_id = new_ids()
    message_id = str(uuid.uuid4())
    engine = sqlalchemy.create_engine(stack.service_env["message"]["DATABASE_URL"])
    try:
        with Session(engine) as session, session.begin():  # as a request that died after its commit
            session.add(
                Message(id=message_id, message="left in the outbox", payload={"n": 1}, status=PENDING)
            )
            session.add(
                OutboxEvent(
                    event_type="heavy_payload_event",
                    payload={
                        "message_id": message_id,
                        "payload": {"n": 1},
                        "_trace_context": {"traceparent": f"00-{trace_id}-{stored_span_id}-01"},
                    },
                )
            )
    finally:
        engine.dispose()

    spans = wait_for(
        lambda: spans_named(
            receiver,
            trace_id,
            "time_consuming_service.time_consuming_event_handler",
            "message_service.on_payload_processed",
        ),
        message="the relayed event's spans",
    )

    handler = only(spans, "time_consuming_service.time_consuming_event_handler")
    assert handler.parent_span_id == stored_span_id
    assert only(spans, "message_service.on_payload_processed").parent_span_id == handler.span_id


def test_an_rpc_call_through_rpc_proxy_continues_the_callers_trace(stack, receiver, amqp_uri):
    trace_id, caller_span_id = new_ids()
    context = {"traceparent": f"00-{trace_id}-{caller_span_id}-01"}  # as a traced client sends it

    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, context_data=context, timeout=10) as cluster_rpc:
        cluster_rpc.sender_service.send_event({"message": "traced"})
    spans = wait_for(
        lambda: spans_named(
            receiver, trace_id, "sender_service.send_event", "receiver_service.receive_event"
        ),
        message="the RPC spans",
    )

    send = only(spans, "sender_service.send_event")
    receive = only(spans, "receiver_service.receive_event")
    assert send.parent_span_id == caller_span_id
    assert (send.kind, send.attributes["rpc.method"]) == ("SPAN_KIND_SERVER", "send_event")
    assert receive.parent_span_id == send.span_id
    assert receive.service == "receiver_service"
