"""What the pipeline cannot beat on this machine: one PostgreSQL insert+commit, one confirmed publish.

Both sequential, one connection, nothing else around them (no framework, no ORM session): the time
a message's every commit and every confirmed event costs at least. The project's pipeline commits
several times per message (the message with its outbox row, the outbox row sent, the job claimed,
uploaded, notified, the outcome) and publishes two confirmed events.
"""

import statistics
import time
import uuid

import sqlalchemy
from kombu import Connection, Exchange, Producer, Queue
from nameko.constants import PERSISTENT

from bench.pipeline import fresh_databases


def insert_commit_rate(url: str, count: int) -> float:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("CREATE TABLE floor (id VARCHAR(36) PRIMARY KEY, body TEXT)")
            connection.commit()
            started = time.perf_counter()
            for _ in range(count):
                connection.exec_driver_sql(
                    "INSERT INTO floor (id, body) VALUES (%s, %s)", (str(uuid.uuid4()), '{"n": 1}')
                )
                connection.commit()
            return count / (time.perf_counter() - started)
    finally:
        engine.dispose()


def confirmed_publish_rate(amqp_uri: str, count: int) -> float:
    """Persistent messages to a durable queue, each publish waiting for the broker's confirm."""
    queue_name = f"bench-floor-{uuid.uuid4().hex[:8]}"
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        queue = Queue(queue_name, Exchange(""), routing_key=queue_name, durable=True, channel=channel)
        queue.declare()
        producer = Producer(channel, serializer="json")
        try:
            started = time.perf_counter()
            for index in range(count):
                producer.publish({"n": index}, routing_key=queue_name, delivery_mode=PERSISTENT)
            return count / (time.perf_counter() - started)
        finally:
            queue.delete()


def measure_floors(amqp_uri, rounds, count, directory, progress) -> dict:
    task = progress.add_task("floors: PostgreSQL commits, confirmed publishes", total=rounds * 2)
    commits, publishes = [], []
    for round_number in range(rounds):
        measurements = [
            lambda: publishes.append(confirmed_publish_rate(amqp_uri, count)),
            lambda: commits.append(postgres_rate(count, directory)),
        ]
        for measure in measurements if round_number % 2 else measurements[::-1]:
            measure()
            progress.advance(task)
    return {
        "count": count,
        "postgresql_insert_commits_per_s": statistics.median(commits),
        "confirmed_persistent_publishes_per_s": statistics.median(publishes),
    }


def postgres_rate(count, directory):
    with fresh_databases("PostgreSQL", directory) as urls:
        return insert_commit_rate(urls["message"], count)
