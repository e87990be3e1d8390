"""Dead letters: events a service can never handle are parked in a durable RabbitMQ queue, not lost
and not redelivered forever.

`common.retries.event_handler` parks an event that failed for good (`DeadLetterQueue.park`),
publishing with confirms on nameko's pooled producer connection before the original delivery is
acked. The parked copy keeps the event's body and where it came from
(headers `x-original-queue`, `x-original-exchange`, `x-original-routing-key`) plus `x-reason`;
`nameko-dead-letters replay` publishes it there again once the cause is fixed: to the handler's own
queue when known (other services that handled the event do not get it again), else to the exchange.

    nameko-dead-letters list   --config services/time_consuming/config.yaml
    nameko-dead-letters replay --config services/time_consuming/config.yaml [--message-id ID]
"""

import argparse
import json
import sys
from datetime import UTC, datetime

from kombu import Connection, Exchange, Queue
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY
from nameko.standalone.events import get_event_exchange

from common.messaging import Publisher, publish_options
from common.queues import durable_queue_arguments
from common.settings import DeadLetterSettings, RetrySettings, validate


def dead_letter_queue(settings: DeadLetterSettings) -> Queue:
    return Queue(settings.DEAD_LETTER_QUEUE, durable=True, queue_arguments=durable_queue_arguments(settings))


def events_exchange(service_name: str, config: dict) -> Exchange:
    """The exchange nameko's `EventDispatcher` publishes a service's events to, declared as nameko does."""
    return get_event_exchange(service_name, config)


def connect(config: dict) -> Connection:
    """A connection whose publishes wait for the broker's confirm (replay acks only after it)."""
    return Connection(
        config[AMQP_URI_CONFIG_KEY],
        ssl=config.get(AMQP_SSL_CONFIG_KEY),
        transport_options={"confirm_publish": True},
    )


class DeadLetterQueue:
    """Parks events through nameko's producer pool: one long-lived connection, publisher confirms."""

    def __init__(self, config: dict, settings: RetrySettings, service_name: str):
        self.config = config
        self.queue = dead_letter_queue(settings)
        self.service_name = service_name
        # mandatory + confirms: returns only once the broker holds the message in a queue
        self.publisher = Publisher(
            config[AMQP_URI_CONFIG_KEY],
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
            use_confirms=True,
            mandatory=True,
            serializer="json",
            **publish_options(settings),
        )

    def park(self, body, reason: str, source_service: str, event_type: str, queue: str | None = None):
        headers = {
            "x-reason": reason[:1000],
            "x-original-service": source_service,
            "x-original-exchange": events_exchange(source_service, self.config).name,
            "x-original-routing-key": event_type,
            "x-failed-by": self.service_name,
            "x-failed-at": datetime.now(UTC).isoformat(),
        }
        if queue is not None:
            headers["x-original-queue"] = queue
        self.publisher.publish(
            body, exchange="", routing_key=self.queue.name, declare=[self.queue], headers=headers
        )


def read_all(connection: Connection, queue: Queue) -> list:
    """Every message in the queue, unacknowledged (they go back when the channel closes)."""
    channel = connection.channel()
    bound = queue.bind(channel)
    bound.declare()
    messages = []
    while (message := bound.get(no_ack=False)) is not None:
        messages.append(message)
    return messages


def describe(message) -> dict:
    headers = message.headers or {}
    return {
        "event": f"{headers.get('x-original-exchange')}/{headers.get('x-original-routing-key')}",
        "failed_at": headers.get("x-failed-at"),
        "reason": headers.get("x-reason"),
        "body": message.decode(),
    }


def list_dead_letters(config: dict) -> list[dict]:
    with connect(config) as connection:
        queue = dead_letter_queue(validate(config, DeadLetterSettings))
        return [describe(message) for message in read_all(connection, queue)]


def replay_dead_letters(config: dict, message_id: str | None = None) -> list[dict]:
    """Publishes each parked event (or those for `message_id`) to where it came from, then acks it."""
    replayed = []
    queue = dead_letter_queue(validate(config, DeadLetterSettings))
    with connect(config) as connection:
        producer = connection.Producer(serializer="json")
        for message in read_all(connection, queue):
            body = message.decode()
            if message_id is not None and not (
                isinstance(body, dict) and body.get("message_id") == message_id
            ):
                continue
            headers = message.headers or {}
            if headers.get("x-original-queue"):
                target = {"exchange": "", "routing_key": headers["x-original-queue"]}
            else:
                exchange = events_exchange(headers["x-original-service"], config)
                target = {"exchange": exchange, "declare": [exchange]}
                target["routing_key"] = headers["x-original-routing-key"]
            producer.publish(body, delivery_mode="persistent", retry=True, **target)
            message.ack()
            replayed.append(describe(message))
    return replayed


def main(argv=None):
    from common.config import load_config

    parser = argparse.ArgumentParser(prog="nameko-dead-letters", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["list", "replay"])
    parser.add_argument("--config", required=True, help="the service's config.yaml (broker, queue name)")
    parser.add_argument("--message-id", help="replay only the dead letters of this message")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    queue = validate(config, DeadLetterSettings).DEAD_LETTER_QUEUE
    try:
        if args.action == "list":
            letters = list_dead_letters(config)
            print(f"{len(letters)} dead letter(s) in {queue}")
        else:
            letters = replay_dead_letters(config, args.message_id)
            print(f"replayed {len(letters)} dead letter(s)")
    except OSError as error:
        print(f"nameko-dead-letters: cannot use the broker: {error}", file=sys.stderr)
        return 2
    for letter in letters:
        print(json.dumps(letter, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
