"""Webhook notifications for Nameko services: requests with urllib3's own retries and a timeout on every call.

Connection errors, 429 and 5xx are retried with exponential backoff (POST included: receivers
dedupe on the message id the notification carries). A 4xx is the receiver refusing the
notification: `PermanentNotificationError`, never retried. With no `WEBHOOK_URL` the notification
is logged and recorded in `Notifier.sent`, so the service works out of the box.
"""

import logging

from nameko.extensions import DependencyProvider

from common.settings import WebhookSettings, settings_of

log = logging.getLogger(__name__)

RETRIED_STATUSES = (429, 500, 502, 503, 504)


class NotificationError(Exception):
    """The notification did not get through: `permanent` says whether trying again can help."""

    permanent = False


class PermanentNotificationError(NotificationError):
    permanent = True


class WebhookClient:
    def __init__(self, session, url: str, timeout: tuple[float, float]):
        self.session = session
        self.url = url
        self.timeout = timeout

    def notify(self, notification: dict, idempotency_key: str | None = None) -> int:
        """POST `notification`; `idempotency_key` lets the receiver drop a repeat (at-least-once)."""
        import requests

        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        try:
            response = self.session.post(self.url, json=notification, headers=headers, timeout=self.timeout)
        except requests.RequestException as error:
            raise NotificationError(f"webhook unreachable: {type(error).__name__}: {error}") from error
        if 400 <= response.status_code < 500 and response.status_code != 429:
            raise PermanentNotificationError(f"webhook refused the notification: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise NotificationError(f"webhook failed after retries: HTTP {response.status_code}")
        return response.status_code


class LoggingNotifier:
    """No webhook configured: the notification is logged and kept (newest last)."""

    def __init__(self):
        self.sent: list[dict] = []

    def notify(self, notification: dict, idempotency_key: str | None = None) -> int:
        log.info("notification (no WEBHOOK_URL configured): %s", notification)
        self.sent.append(notification)
        return 0


def make_session(retries: int, backoff: float):
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(
        total=retries,
        connect=retries,
        read=0,  # a timeout while waiting for the answer is final: the receiver may be stuck on it
        status=retries,
        other=0,
        backoff_factor=backoff,
        status_forcelist=RETRIED_STATUSES,
        allowed_methods=frozenset({"POST"}),
        respect_retry_after_header=True,
        raise_on_status=False,  # hand back the last answer: the client decides what it means
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class Notifier(DependencyProvider):
    """Injects an object with `notify(dict) -> status`; one `requests.Session` per container."""

    def setup(self):
        settings = settings_of(self.container, WebhookSettings)
        if not settings.WEBHOOK_URL:
            self.client = LoggingNotifier()
            return
        self.session = make_session(retries=settings.WEBHOOK_RETRIES, backoff=settings.WEBHOOK_BACKOFF)
        timeout = (settings.WEBHOOK_CONNECT_TIMEOUT, settings.WEBHOOK_READ_TIMEOUT)
        self.client = WebhookClient(self.session, settings.WEBHOOK_URL, timeout)

    def stop(self):
        if hasattr(self, "session"):
            self.session.close()

    def get_dependency(self, worker_ctx):
        return self.client
