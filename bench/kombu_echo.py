"""The floor: a raw kombu request/reply server, no framework (one process, one blocking loop)."""

import sys

from kombu import Connection, Consumer, Producer, Queue

QUEUE = "bench-kombu-echo"


def serve(amqp_uri: str):
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        producer = Producer(channel, serializer="json")

        received = []  # replies are sent outside the callback: publishing may drain (and deliver) again

        with Consumer(
            channel,
            Queue(QUEUE, durable=False, auto_delete=False),
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
                    )
                    message.ack()


if __name__ == "__main__":
    serve(sys.argv[1])
