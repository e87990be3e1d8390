"""common.retries: the order of publish and ack (the broker parts: the services' tests)."""

from unittest.mock import Mock

import pytest
from prometheus_client import REGISTRY

from common.retries import ATTEMPT_HEADER, DELIVERY_HEADER, Attempt, EventHandler
from common.settings import RetrySettings

pytestmark = pytest.mark.unit


class Permanent(Exception):
    permanent = True


@pytest.fixture
def handler():
    """An EventHandler whose broker side is one Mock, recording publish and ack in order."""
    broker = Mock()
    entrypoint = EventHandler("message_service", "heavy_payload_event")
    entrypoint.container = Mock(config={}, service_name="time_consuming_service")
    entrypoint.settings = RetrySettings()
    entrypoint.queue = Mock()
    entrypoint.queue.name = "evt-q"
    entrypoint.delays = (5, 30)
    entrypoint.max_attempts = 3
    entrypoint.attempts = {}
    entrypoint.dead_letters = broker.dead_letters
    entrypoint.queue_consumer = broker.queue_consumer
    return entrypoint, broker


def delivery(attempt=None):
    message = Mock()
    message.decode.return_value = {"message_id": "m-1"}
    message.headers = {"nameko.call_id_stack": ["x"], "x-death": [{}]}
    if attempt:
        message.headers.update({ATTEMPT_HEADER: attempt, DELIVERY_HEADER: "d-1"})
    return message


def counted(name: str) -> float:
    labels = {"service": "time_consuming_service", "queue": "evt-q"}
    return REGISTRY.get_sample_value(name, labels) or 0


def calls(broker) -> list[str]:
    return [name for name, _, _ in broker.mock_calls]


def test_a_transient_failure_is_published_to_the_next_retry_queue_before_the_ack(handler):
    entrypoint, broker = handler
    message = delivery(attempt=2)
    scheduled = counted("nameko_event_retries_scheduled_total")

    entrypoint.handle_result(message, Mock(), exc_info=(None, ConnectionError("db down"), None))

    assert calls(broker) == ["dead_letters.publisher.publish", "queue_consumer.ack_message"]
    assert counted("nameko_event_retries_scheduled_total") == scheduled + 1
    publish = broker.dead_letters.publisher.publish.call_args
    assert publish.kwargs["routing_key"] == "evt-q.retry-30s"
    assert publish.kwargs["headers"] == {
        "nameko.call_id_stack": ["x"],  # nameko's context kept, the broker's x-death dropped
        ATTEMPT_HEADER: 3,
        DELIVERY_HEADER: "d-1",
    }


@pytest.mark.parametrize(
    ("attempt", "error", "reason"),
    [
        (1, Permanent("HTTP 410"), "HTTP 410"),
        (3, ConnectionError("db down"), "gave up after 3 attempt(s): ConnectionError: db down"),
    ],
    ids=["permanent", "last-attempt"],
)
def test_a_permanent_failure_or_the_last_attempt_is_parked_before_the_ack(handler, attempt, error, reason):
    entrypoint, broker = handler
    parked = counted("nameko_dead_letters_parked_total")

    entrypoint.handle_result(delivery(attempt), Mock(), exc_info=(None, error, None))

    assert calls(broker) == ["dead_letters.park", "queue_consumer.ack_message"]
    assert broker.dead_letters.park.call_args.args[1] == reason
    assert counted("nameko_dead_letters_parked_total") == parked + 1


def test_when_the_copy_cannot_be_published_the_original_is_requeued_not_acked(handler):
    entrypoint, broker = handler
    broker.dead_letters.publisher.publish.side_effect = OSError("broker gone")
    scheduled = counted("nameko_event_retries_scheduled_total")

    entrypoint.handle_result(delivery(), Mock(), exc_info=(None, ConnectionError("db down"), None))

    assert calls(broker) == ["dead_letters.publisher.publish", "queue_consumer.requeue_message"]
    assert counted("nameko_event_retries_scheduled_total") == scheduled  # not scheduled: requeued


def test_success_is_acked(handler):
    entrypoint, broker = handler

    entrypoint.handle_result(delivery(), Mock(), result=None, exc_info=None)

    assert calls(broker) == ["queue_consumer.ack_message"]


def test_an_attempt_is_final_at_the_maximum():
    assert [Attempt(number, 3).final for number in (1, 2, 3, 4)] == [False, False, True, True]
