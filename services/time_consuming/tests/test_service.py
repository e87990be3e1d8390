"""time_consuming_service in a real container: real broker, PostgreSQL, S3 API (moto) and webhook receiver."""

import json
import threading
import uuid

import pytest
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from pytest_httpserver import HTTPServer
from werkzeug import Response

from common.dead_letters import list_dead_letters, replay_dead_letters
from tests.support import wait_for
from time_consuming.service import TimeConsumingService


@pytest.fixture
def start_service(container_factory, service_config, s3, httpserver):
    """The service with S3 and a webhook on `httpserver`; returns (config, dispatch, rpc-getter)."""
    client, s3_settings = s3

    def start(**overrides):
        settings = {
            **s3_settings,
            "WEBHOOK_URL": httpserver.url_for("/hook"),
            "WEBHOOK_BACKOFF": 0.01,
            "WEBHOOK_READ_TIMEOUT": 2,
            "DEAD_LETTER_QUEUE": f"dead-letters-{uuid.uuid4().hex[:8]}",
        }
        config = service_config("time_consuming", **{**settings, **overrides})
        container_factory(TimeConsumingService, config).start()
        dispatch = event_dispatcher(config)
        return config, lambda event: dispatch("message_service", "heavy_payload_event", event)

    return start


def job_state(config, message_id, states=("notified", "failed")):
    with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
        job = cluster_rpc.time_consuming_service.get_job(message_id)
    return job if job and job["state"] in states else None


def stored(s3, key):
    client, settings = s3
    return client.get_object(Bucket=settings["S3_BUCKET"], Key=key)["Body"].read()


def keys(s3):
    client, settings = s3
    return [item["Key"] for item in client.list_objects_v2(Bucket=settings["S3_BUCKET"]).get("Contents", [])]


def test_the_payload_is_uploaded_then_the_webhook_is_notified(start_service, s3, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_json({})
    config, dispatch = start_service()

    dispatch({"message_id": "m-flow", "payload": {"numbers": [1, 2, 3]}})
    job = wait_for(lambda: job_state(config, "m-flow"), message="the job to finish")

    assert job == {
        "message_id": "m-flow",
        "state": "notified",
        "attempts": 1,
        "object_key": "payloads/m-flow.json",
        "last_error": None,
    }
    assert json.loads(stored(s3, "payloads/m-flow.json")) == {"numbers": [1, 2, 3]}
    [(request, _)] = httpserver.log
    assert request.headers["Idempotency-Key"] == "m-flow"
    assert request.json == {
        "message_id": "m-flow",
        "object_key": "payloads/m-flow.json",
        "outcome": "uploaded",
    }


def test_the_same_event_twice_makes_one_object_one_notification_one_job(start_service, s3, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_json({})
    config, dispatch = start_service()

    for _ in range(2):
        dispatch({"message_id": "m-twice", "payload": {"a": 1}})
    dispatch({"message_id": "m-sentinel", "payload": {}})
    wait_for(lambda: job_state(config, "m-sentinel"), message="the sentinel job")

    # The sentinel was dispatched after both copies and one queue delivers in order: both were handled.
    assert job_state(config, "m-twice")["attempts"] == 1
    assert keys(s3) == ["payloads/m-sentinel.json", "payloads/m-twice.json"]
    assert sorted(request.json["message_id"] for request, _ in httpserver.log) == ["m-sentinel", "m-twice"]


def test_a_4xx_is_dead_lettered_without_retries_and_replayed_once_fixed(start_service, s3, httpserver):
    httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("unknown", status=410)
    httpserver.expect_request("/hook", method="POST").respond_with_json({})
    config, dispatch = start_service()

    dispatch({"message_id": "m-gone", "payload": {"b": 2}})
    job = wait_for(lambda: job_state(config, "m-gone"), message="the job to fail")
    letters = wait_for(lambda: list_dead_letters(config), message="the dead letter")

    assert job["state"] == "failed" and "HTTP 410" in job["last_error"]
    assert len(httpserver.log) == 1  # a 4xx is not retried
    assert [(letter["body"]["message_id"], letter["reason"]) for letter in letters] == [
        ("m-gone", "webhook refused the notification: HTTP 410")
    ]
    assert list_dead_letters(config) == letters  # listing leaves them in the queue

    assert len(replay_dead_letters(config)) == 1  # the webhook answers 200 now
    job = wait_for(lambda: job_state(config, "m-gone", states=("notified",)), message="the replayed job")

    assert job["attempts"] == 2
    assert list_dead_letters(config) == []
    assert [response.status_code for _, response in httpserver.log] == [410, 200]


def test_an_invalid_event_is_dead_lettered(start_service):
    config, dispatch = start_service()

    dispatch({"message_id": "m-no-payload"})
    dispatch(["not", "an", "object"])

    letters = wait_for(lambda: len(list_dead_letters(config)) == 2 and list_dead_letters(config), message="2")
    # two workers handle them concurrently: either may be parked first
    assert sorted(letter["reason"] for letter in letters) == [
        "invalid event: expected a JSON object, got list",
        "invalid event: payload: Field required",
    ]


def test_a_webhook_that_never_answers_fails_the_job(start_service, httpserver):
    released = threading.Event()

    def never_answers(request):
        released.wait(10)
        return Response(status=200)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(never_answers)
    config, dispatch = start_service(WEBHOOK_READ_TIMEOUT=0.5)
    try:
        dispatch({"message_id": "m-silent", "payload": {}})
        job = wait_for(lambda: job_state(config, "m-silent"), message="the job to fail")
    finally:
        released.set()

    assert job["state"] == "failed" and "ReadTimeout" in job["last_error"]


def test_other_workers_progress_while_a_notification_is_slow(start_service):
    """requests (and boto3) block on sockets; under eventlet only their own worker waits."""
    released = threading.Event()
    received, answered = [], []

    def slow_for_one(request):
        received.append(request.json["message_id"])
        if request.json["message_id"] == "m-slow":
            released.wait(20)
        answered.append(request.json["message_id"])
        return Response("{}", status=200)

    webhook = HTTPServer(threaded=True)  # a receiver that answers several notifications at once
    webhook.expect_request("/hook", method="POST").respond_with_handler(slow_for_one)
    webhook.start()
    config, dispatch = start_service(WEBHOOK_URL=webhook.url_for("/hook"), WEBHOOK_READ_TIMEOUT=30)
    try:
        dispatch({"message_id": "m-slow", "payload": {}})
        wait_for(lambda: received == ["m-slow"], message="m-slow's notification being received")
        for number in range(3):
            dispatch({"message_id": f"m-fast-{number}", "payload": {}})
        for number in range(3):
            wait_for(lambda n=number: job_state(config, f"m-fast-{n}"), message="the fast jobs")
        assert sorted(answered) == ["m-fast-0", "m-fast-1", "m-fast-2"]  # m-slow's is still waiting
    finally:
        released.set()
    wait_for(lambda: job_state(config, "m-slow"), message="the slow job")
    webhook.stop()
    assert answered[-1] == "m-slow"


def test_with_the_embedded_sqlite_default_concurrent_jobs_all_finish(start_service, s3, httpserver, tmp_path):
    httpserver.expect_request("/hook", method="POST").respond_with_json({})
    config, dispatch = start_service(DATABASE_URL=f"sqlite:///{tmp_path / 'jobs.sqlite3'}", max_workers=10)

    for index in range(10):
        dispatch({"message_id": f"m-sqlite-{index}", "payload": {"index": index}})
    for index in range(10):
        wait_for(lambda i=index: job_state(config, f"m-sqlite-{i}"), message=f"job {index}")

    assert [job_state(config, f"m-sqlite-{index}")["state"] for index in range(10)] == ["notified"] * 10
    assert len(keys(s3)) == 10
