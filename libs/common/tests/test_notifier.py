"""Webhook notifications against a real HTTP server (pytest-httpserver): retries, timeouts, 4xx."""

import threading

import pytest
from werkzeug import Response

from common.notifier import (
    LoggingNotifier,
    NotificationError,
    PermanentNotificationError,
    WebhookClient,
    make_session,
)


def webhook(httpserver, read_timeout=2.0) -> WebhookClient:
    return WebhookClient(
        make_session(retries=3, backoff=0.01), httpserver.url_for("/hook"), (2.0, read_timeout)
    )


def test_503_then_200_is_retried_and_delivered_once(httpserver):
    httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("busy", status=503)
    httpserver.expect_request("/hook", method="POST").respond_with_json({"ok": True})

    status = webhook(httpserver).notify({"message_id": "m-1", "object_key": "k", "outcome": "uploaded"})

    assert status == 200
    assert [response.status_code for _, response in httpserver.log] == [503, 200]
    assert all(request.json["message_id"] == "m-1" for request, _ in httpserver.log)


def test_a_webhook_that_always_fails_gives_up_after_the_retries(httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("down", status=502)

    with pytest.raises(NotificationError, match="HTTP 502") as raised:
        webhook(httpserver).notify({"message_id": "m-2"})

    assert not raised.value.permanent
    assert len(httpserver.log) == 4  # the first try and 3 retries


def test_a_webhook_that_never_answers_times_out(httpserver):
    released = threading.Event()

    def never_answers(request):
        released.wait(10)  # (the test server answers one request at a time: free it afterwards)
        return Response(status=200)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(never_answers)

    try:
        with pytest.raises(NotificationError, match="ReadTimeout"):
            webhook(httpserver, read_timeout=0.3).notify({"message_id": "m-3"})
    finally:
        released.set()


def test_a_4xx_is_permanent_and_not_retried(httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("no such receiver", status=404)

    with pytest.raises(PermanentNotificationError, match="HTTP 404"):
        webhook(httpserver).notify({"message_id": "m-4"})

    assert len(httpserver.log) == 1


def test_with_no_webhook_the_notification_is_logged_and_kept(caplog):
    notifier = LoggingNotifier()
    with caplog.at_level("INFO"):
        notifier.notify({"message_id": "m-5"})

    assert notifier.sent == [{"message_id": "m-5"}]
    assert "m-5" in caplog.text
