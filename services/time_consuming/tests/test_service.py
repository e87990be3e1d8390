"""time_consuming_service in a real container: real broker, PostgreSQL, S3 API (moto) and webhook receiver."""

import json
import threading
import uuid

import pytest
from kombu import Connection, Queue
from nameko.standalone.events import event_dispatcher, get_event_exchange
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_waiter
from prometheus_client import REGISTRY
from pytest_httpserver import HTTPServer
from werkzeug import Response

from common.dead_letters import list_dead_letters, replay_dead_letters
from testkit.processes import wait_for
from time_consuming.service import TimeConsumingService

SERVICE = TimeConsumingService.name
OUTCOMES = ("done", "already_done", "failed", "retried")


@pytest.fixture
def start_service(container_factory, service_config, s3, httpserver, own_vhost):
    """The service with S3 and a webhook on `httpserver`; returns (config, dispatch, container)."""
    client, s3_settings = s3

    def start(**overrides):
        settings = {
            **s3_settings,
            "WEBHOOK_URL": httpserver.url_for("/hook"),
            "WEBHOOK_BACKOFF": 0.01,
            "WEBHOOK_READ_TIMEOUT": 2,
            "AMQP_URI": own_vhost[1],
            "DEAD_LETTER_QUEUE": f"dead-letters-{uuid.uuid4().hex[:8]}",
            "RETRY_DELAYS": "0.2,0.4",  # the retry queues' TTLs: seconds here, minutes in production
            "RETRY_MAX_ATTEMPTS": 4,
        }
        config = service_config("time_consuming", **{**settings, **overrides})
        container = container_factory(TimeConsumingService, config)
        container.start()
        dispatch = event_dispatcher(config)
        return config, lambda event: dispatch("message_service", "heavy_payload_event", event), container

    return start


def handled(container, deliveries: int = 1):
    """Waits, as the block ends, until the handler has run `deliveries` times (retries included)."""
    runs = []
    return entrypoint_waiter(
        container,
        "time_consuming_event_handler",
        timeout=30,
        callback=lambda worker_ctx, result, exc_info: runs.append(worker_ctx) or len(runs) == deliveries,
    )


class Outcomes:
    """The `payload_processed` reports the service sends, read from a queue of the test's own."""

    def __init__(self, config):
        self.connection = Connection(config["AMQP_URI"])
        self.queue = Queue(
            f"outcomes-{uuid.uuid4().hex[:8]}",
            exchange=get_event_exchange("time_consuming_service", config),
            routing_key="payload_processed",
            auto_delete=True,
        ).bind(self.connection.default_channel)
        self.queue.declare()
        self.seen = []

    def __call__(self) -> list:
        while (message := self.queue.get(no_ack=True)) is not None:
            self.seen.append(message.decode())
        return self.seen


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
    config, dispatch, container = start_service()

    with handled(container):
        dispatch({"message_id": "m-flow", "payload": {"numbers": [1, 2, 3]}})
    job = job_state(config, "m-flow")

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
    config, dispatch, container = start_service()
    outcomes = Outcomes(config)

    for _ in range(2):
        dispatch({"message_id": "m-twice", "payload": {"a": 1}})
    dispatch({"message_id": "m-sentinel", "payload": {}})
    wait_for(lambda: len(outcomes()) == 3, message="both copies and the sentinel handled")

    # A copy that found the first one's lease was retried later, then found the job notified.
    assert [outcome["status"] for outcome in outcomes()] == ["done"] * 3
    assert job_state(config, "m-twice")["attempts"] == 1
    assert keys(s3) == ["payloads/m-sentinel.json", "payloads/m-twice.json"]
    assert sorted(request.json["message_id"] for request, _ in httpserver.log) == ["m-sentinel", "m-twice"]


def test_a_4xx_is_dead_lettered_without_retries_and_replayed_once_fixed(start_service, s3, httpserver):
    httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("unknown", status=410)
    httpserver.expect_request("/hook", method="POST").respond_with_json({})
    config, dispatch, container = start_service()

    with handled(container):
        dispatch({"message_id": "m-gone", "payload": {"b": 2}})
    job = job_state(config, "m-gone")
    letters = list_dead_letters(config)  # parked before the delivery's ack, in the worker

    assert job["state"] == "failed" and "HTTP 410" in job["last_error"]
    assert len(httpserver.log) == 1  # a 4xx is not retried
    assert [(letter["body"]["message_id"], letter["reason"]) for letter in letters] == [
        ("m-gone", "webhook refused the notification: HTTP 410")
    ]
    assert list_dead_letters(config) == letters  # listing leaves them in the queue

    with handled(container):
        assert len(replay_dead_letters(config)) == 1  # the webhook answers 200 now
    job = job_state(config, "m-gone", states=("notified",))

    assert job["attempts"] == 2
    assert list_dead_letters(config) == []
    assert [response.status_code for _, response in httpserver.log] == [410, 200]


def test_an_invalid_event_is_dead_lettered(start_service):
    config, dispatch, container = start_service()

    with handled(container, deliveries=2):
        dispatch({"message_id": "m-no-payload"})
        dispatch(["not", "an", "object"])

    letters = list_dead_letters(config)
    # two workers handle them concurrently: either may be parked first
    assert sorted(letter["reason"] for letter in letters) == [
        "invalid event: expected a JSON object, got list",
        "invalid event: payload: Field required",
    ]


def test_a_webhook_that_never_answers_is_retried_then_parked(start_service, httpserver):
    released = threading.Event()
    received = []

    def never_answers(request):
        received.append(request.json["message_id"])
        released.wait(10)
        return Response(status=200)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(never_answers)
    config, dispatch, container = start_service(
        WEBHOOK_READ_TIMEOUT=0.5, WEBHOOK_RETRIES=0, RETRY_MAX_ATTEMPTS=2
    )
    try:
        dispatch({"message_id": "m-silent", "payload": {}})
        job = wait_for(lambda: job_state(config, "m-silent"), message="the job to fail")
        [letter] = wait_for(lambda: list_dead_letters(config), message="the dead letter")
    finally:
        released.set()

    assert job["state"] == "failed" and "ReadTimeout" in job["last_error"]
    assert job["attempts"] == 2 and received[0] == "m-silent"
    assert letter["reason"].startswith("gave up after 2 attempt(s): NotificationError: webhook unreachable")


def test_a_webhook_answering_503_is_retried_later_until_it_accepts(start_service, httpserver):
    for _ in range(3):
        httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_json({})
    config, dispatch, container = start_service(WEBHOOK_RETRIES=0)  # each attempt: one request

    with handled(container, deliveries=4):  # three refused, each retried from its retry queue
        dispatch({"message_id": "m-503", "payload": {"c": 3}})
    job = job_state(config, "m-503")

    assert job["state"] == "notified" and job["attempts"] == 4
    assert [response.status_code for _, response in httpserver.log] == [503, 503, 503, 200]
    assert list_dead_letters(config) == []


def test_an_s3_error_is_retried_later_until_the_upload_succeeds(start_service, s3, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_json({})
    client, settings = s3
    config, dispatch, container = start_service(RETRY_MAX_ATTEMPTS=1000)
    client.delete_bucket(Bucket=settings["S3_BUCKET"])  # made at start, empty: S3 now answers NoSuchBucket

    dispatch({"message_id": "m-s3", "payload": {"d": 4}})
    wait_for(
        lambda: "NoSuchBucket" in ((job_state(config, "m-s3", ("pending",)) or {}).get("last_error") or ""),
        message="a failed upload",
    )
    client.create_bucket(Bucket=settings["S3_BUCKET"])
    job = wait_for(
        lambda: job_state(config, "m-s3", ("notified",)), message="the job after the bucket is back"
    )

    assert job["attempts"] >= 2 and json.loads(stored(s3, "payloads/m-s3.json")) == {"d": 4}
    assert len(httpserver.log) == 1


def test_exhausted_attempts_park_the_event_with_its_reason_and_replay_finishes_it(start_service, httpserver):
    for _ in range(4):
        httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("down", status=502)
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_json({})
    config, dispatch, container = start_service(WEBHOOK_RETRIES=0)
    counted = Counted()

    with handled(container, deliveries=4):
        dispatch({"message_id": "m-down", "payload": {}})
    [letter] = list_dead_letters(config)
    job = job_state(config, "m-down")

    assert letter["reason"] == (
        "gave up after 4 attempt(s): NotificationError: webhook failed after retries: HTTP 502"
    )
    assert job["state"] == "failed" and job["attempts"] == 4
    wait_for(lambda: counted.since() == {"retried": 3, "failed": 1, "scheduled": 3, "parked": 1})

    with handled(container):
        assert len(replay_dead_letters(config)) == 1
    job = job_state(config, "m-down", states=("notified",))
    assert job["attempts"] == 5 and len(httpserver.log) == 5
    assert list_dead_letters(config) == []
    assert counted.since() == {"retried": 3, "failed": 1, "scheduled": 3, "parked": 1, "done": 1}

    dispatch({"message_id": "m-down", "payload": {}})  # once more: nothing left to do
    wait_for(lambda: counted.since().get("already_done") == 1, message="the duplicate counted")
    assert len(httpserver.log) == 5


class Counted:
    """The Prometheus counters (this process's registry) of what the service did since it was made."""

    QUEUE = "evt-message_service-heavy_payload_event--time_consuming_service.time_consuming_event_handler"
    SAMPLES = {
        **{outcome: ("time_consuming_jobs_total", {"outcome": outcome}) for outcome in OUTCOMES},
        "scheduled": ("nameko_event_retries_scheduled_total", {"service": SERVICE, "queue": QUEUE}),
        "parked": ("nameko_dead_letters_parked_total", {"service": SERVICE, "queue": QUEUE}),
    }

    def __init__(self):
        self.before = self.now()

    def now(self) -> dict:
        return {key: REGISTRY.get_sample_value(*sample) or 0 for key, sample in self.SAMPLES.items()}

    def since(self) -> dict:
        return {
            key: value - self.before[key] for key, value in self.now().items() if value != self.before[key]
        }


def test_the_upload_is_recorded_and_no_transaction_waits_on_the_webhook(start_service):
    """While the webhook holds the notification, the job reads `uploaded` and a duplicate does not
    notify concurrently: it finds the lease alive and is retried later."""
    released = threading.Event()
    received = []

    def held(request):
        received.append(request.json["message_id"])
        released.wait(20)
        return Response("{}", status=200)

    webhook = HTTPServer(threaded=True)
    webhook.expect_request("/hook", method="POST").respond_with_handler(held)
    webhook.start()
    config, dispatch, container = start_service(
        WEBHOOK_URL=webhook.url_for("/hook"), WEBHOOK_READ_TIMEOUT=30, RETRY_MAX_ATTEMPTS=50
    )
    outcomes = Outcomes(config)
    try:
        dispatch({"message_id": "m-held", "payload": {}})
        wait_for(lambda: received == ["m-held"], message="the notification being held")
        assert job_state(config, "m-held", ("uploaded",))
        dispatch({"message_id": "m-held", "payload": {}})  # a duplicate, while the first one notifies
        dispatch({"message_id": "m-other", "payload": {}})
        wait_for(lambda: received == ["m-held", "m-other"], message="the other job's notification")
    finally:
        released.set()
    wait_for(lambda: job_state(config, "m-other", ("notified",)), message="the other job")
    job = wait_for(lambda: job_state(config, "m-held", ("notified",)), message="the held job")
    wait_for(lambda: len(outcomes()) == 3, message="the duplicate handled too")
    webhook.stop()

    assert received == ["m-held", "m-other"]
    assert job["attempts"] == 1  # the duplicate claimed nothing


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
    config, dispatch, container = start_service(WEBHOOK_URL=webhook.url_for("/hook"), WEBHOOK_READ_TIMEOUT=30)
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
    config, dispatch, container = start_service(
        DATABASE_URL=f"sqlite:///{tmp_path / 'jobs.sqlite3'}", max_workers=10
    )

    for index in range(10):
        dispatch({"message_id": f"m-sqlite-{index}", "payload": {"index": index}})
    for index in range(10):
        wait_for(lambda i=index: job_state(config, f"m-sqlite-{i}"), message=f"job {index}")

    assert [job_state(config, f"m-sqlite-{index}")["state"] for index in range(10)] == ["notified"] * 10
    assert len(keys(s3)) == 10
