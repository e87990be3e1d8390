"""The compose stack's webhook receiver (`webhook-sink`) as a real process, over real HTTP: what
time_consuming's notifier sends, a repeated Idempotency-Key, bad bodies, the listing, a graceful stop.
(The compose stack delivering to it: tests/containers/test_compose_stack.py.)"""

import json
import signal
import subprocess

import pytest
import requests

from common.notifier import WebhookClient, make_session
from testkit.processes import BIN, free_port, wait_for


@pytest.fixture
def sink(tmp_path):
    port = free_port()
    log_path = tmp_path / "webhook-sink.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [BIN / "webhook-sink", "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=log
        )
    base = f"http://127.0.0.1:{port}"

    def answers():
        try:
            return requests.get(f"{base}/health", timeout=1).ok
        except requests.ConnectionError:
            return process.poll() is not None and pytest.fail(log_path.read_text())

    wait_for(answers, timeout=30, interval=0.1, message="webhook-sink answering")
    process.base, process.log_path = base, log_path
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def received(sink) -> list[dict]:
    return requests.get(f"{sink.base}/notifications", timeout=5).json()["notifications"]


def test_a_repeated_idempotency_key_is_acknowledged_and_recorded_once(sink):
    client = WebhookClient(make_session(retries=0, backoff=0), f"{sink.base}/notifications", (5, 5))
    first = {"message_id": "m-1", "object_key": "payloads/m-1.json", "outcome": "done"}

    assert client.notify(first, idempotency_key="m-1") == 200
    assert client.notify(first, idempotency_key="m-1") == 200  # the at-least-once repeat
    assert client.notify({"message_id": "m-2"}, idempotency_key="m-2") == 200

    listing = received(sink)
    assert [(n["idempotency_key"], n["body"], n["deliveries"]) for n in listing] == [
        ("m-1", first, 2),
        ("m-2", {"message_id": "m-2"}, 1),
    ]
    repeat = requests.post(f"{sink.base}/notifications", json=first, headers={"Idempotency-Key": "m-1"})
    assert (repeat.status_code, repeat.json()) == (200, {"recorded": False, "duplicate": True})


def test_without_a_key_every_request_is_recorded(sink):
    for _ in range(2):
        answer = requests.post(f"{sink.base}/notifications", json={"message_id": "same"}, timeout=5)
        assert answer.json() == {"recorded": True, "duplicate": False}
    assert [n["deliveries"] for n in received(sink)] == [1, 1]


def test_every_notification_is_one_json_log_line(sink):
    requests.post(f"{sink.base}/notifications", json={"message_id": "m-9"}, headers={"Idempotency-Key": "k"})
    requests.post(f"{sink.base}/notifications", json={"message_id": "m-9"}, headers={"Idempotency-Key": "k"})

    def logged():
        lines = [json.loads(line) for line in sink.log_path.read_text().splitlines()]
        return [line for line in lines if line.get("idempotency_key") == "k"] if len(lines) >= 3 else None

    first, repeat = wait_for(logged, timeout=10, message="two log lines")
    assert first["service"] == "webhook_sink" and first["notification"] == {"message_id": "m-9"}
    assert (first["duplicate"], repeat["duplicate"]) == (False, True)


@pytest.mark.parametrize(
    "body, status, error",
    [
        (b"{not json", 400, "InvalidInput"),
        (b"[1, 2]", 400, "InvalidInput"),
        (b"x" * (1024 * 1024 + 1), 413, "PayloadTooLarge"),
    ],
)
def test_a_bad_body_is_a_4xx_json_error_and_the_sink_keeps_serving(sink, body, status, error):
    answer = requests.post(
        f"{sink.base}/notifications", data=body, headers={"Content-Type": "application/json"}, timeout=5
    )
    assert (answer.status_code, answer.json()["error"]) == (status, error)
    assert received(sink) == []
    assert requests.post(f"{sink.base}/notifications", json={"ok": 1}, timeout=5).status_code == 200


def test_sigterm_is_a_graceful_exit(sink):
    sink.send_signal(signal.SIGTERM)
    assert sink.wait(timeout=10) == 0
