"""The floor: a raw kombu request/reply server, no framework (one process, one blocking loop).

Two ways, one process each: as light as AMQP allows (a transient queue, transient messages, no
publisher confirms), and as nameko 2.14 publishes (a durable queue, persistent messages, every
publish confirmed by the broker, on both sides), so the gap between nameko and the floor splits
into what the delivery guarantees cost and what the framework does.
"""

import sys

from kombu import Connection, Consumer, Producer, Queue
from nameko.constants import PERSISTENT  # the delivery mode nameko's Publisher sends with

QUEUE = "bench-kombu-echo"
CONFIRMED_QUEUE = "bench-kombu-echo-confirmed"


def serve(amqp_uri: str, confirmed: bool):
    # confirm_publish: every publish waits for the broker's ack, as nameko's Publisher does
    with Connection(amqp_uri, transport_options={"confirm_publish": confirmed}) as connection:
        channel = connection.channel()
        producer = Producer(channel, serializer="json")

        received = []  # replies are sent outside the callback: publishing may drain (and deliver) again

        with Consumer(
            channel,
            Queue(CONFIRMED_QUEUE if confirmed else QUEUE, durable=confirmed, auto_delete=False),
            callbacks=[lambda body, message: received.append(message)],
            prefetch_count=100,
        ):
            print("ready", flush=True)
            while True:
                connection.drain_events()
                while received:
                    message = received.pop(0)
                    producer.publish(
                        message.body,  # the request's bytes as they came: no decoding, no encoding
                        content_type=message.content_type,
                        content_encoding=message.content_encoding,
                        exchange="",
                        routing_key=message.properties["reply_to"],
                        correlation_id=message.properties["correlation_id"],
                        delivery_mode=PERSISTENT if confirmed else None,
                    )
                    message.ack()


if __name__ == "__main__":
    serve(sys.argv[1], confirmed="--confirmed" in sys.argv[2:])
