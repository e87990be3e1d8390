"""Idempotent intake: a request sent or delivered again stores nothing new and gets the first result.

message_service in a real container on the real broker and PostgreSQL: the same AMQP request
delivered twice (as the broker does after a lost ack), the same idempotency key sent twice over RPC
and HTTP, sequentially and at once, and a key reused for another message.
"""

import uuid

import eventlet
import pytest
import requests
import sqlalchemy
from kombu import Connection, Exchange, Producer, Queue
from nameko.standalone.rpc import ClusterRpcProxy

from common.errors import Conflict
from message.service import MessageService
from testkit.processes import free_port, wait_for


@pytest.fixture
def message_service(container_factory, service_config):
    port = free_port()
    config = service_config("message", WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")
    container_factory(MessageService, config).start()
    engine = sqlalchemy.create_engine(config["DATABASE_URL"])

    def stored(text: str) -> list[str]:
        """Ids of the messages stored with this text."""
        with engine.connect() as connection:
            query = sqlalchemy.text("SELECT id FROM messages WHERE message = :text")
            return connection.execute(query, {"text": text}).scalars().all()

    with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
        yield config, cluster_rpc.message_service, f"http://127.0.0.1:{port}", stored
    engine.dispose()


def test_a_request_delivered_twice_stores_one_message_and_answers_the_same(message_service):
    config, _, _, stored = message_service
    rpc_exchange = Exchange("nameko-rpc", type="topic", durable=True)
    name = f"replies-{uuid.uuid4().hex[:8]}"  # replies come through the RPC exchange, keyed by queue name
    replies = Queue(name, exchange=rpc_exchange, routing_key=name, exclusive=True, auto_delete=True)
    request = {"args": [{"message": "delivered twice", "payload": {"n": 1}}], "kwargs": {}}

    with Connection(config["AMQP_URI"]) as connection:
        bound = replies.bind(connection.default_channel)
        bound.declare()
        producer = Producer(connection.default_channel, rpc_exchange)
        for _ in range(2):  # one request, as the broker redelivers it: the same correlation id
            producer.publish(
                request,
                routing_key="message_service.receive_message",
                reply_to=replies.name,
                correlation_id="request-1",
                serializer="json",
            )
        answers = [wait_for(lambda: bound.get(no_ack=True), message="a reply").decode() for _ in range(2)]

    first, second = (answer["result"] for answer in answers)
    assert first == second
    assert first["status"] == "pending"
    assert stored("delivered twice") == [first["id"]]


def test_the_same_key_twice_over_rpc_gives_the_first_result(message_service):
    _, rpc, _, stored = message_service
    event = {"message": "rpc retry", "payload": {"n": 2}, "idempotency_key": "order-7"}

    first = rpc.receive_message(event)
    again = rpc.receive_message(event)

    assert again == first
    assert stored("rpc retry") == [first["id"]]


def test_the_same_key_twice_over_http_gives_the_first_result(message_service):
    _, _, base_url, stored = message_service
    body, headers = {"message": "http retry"}, {"Idempotency-Key": "http-1"}

    first = requests.post(f"{base_url}/messages", json=body, headers=headers, timeout=10)
    again = requests.post(f"{base_url}/messages", json=body, headers=headers, timeout=10)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() == {"id": first.json()["id"], "status": "received"}
    assert stored("http retry") == [first.json()["id"]]


def test_a_key_used_for_another_message_is_a_conflict(message_service):
    _, rpc, base_url, stored = message_service
    rpc.receive_message({"message": "the first", "idempotency_key": "k-1"})

    with pytest.raises(Conflict):
        rpc.receive_message({"message": "another", "idempotency_key": "k-1"})
    response = requests.post(
        f"{base_url}/messages", json={"message": "another"}, headers={"Idempotency-Key": "k-1"}, timeout=10
    )

    assert response.status_code == 409
    assert response.json()["error"] == "Conflict"
    assert stored("another") == []


def test_a_header_and_a_body_key_that_differ_are_a_conflict(message_service):
    _, _, base_url, stored = message_service

    response = requests.post(
        f"{base_url}/messages",
        json={"message": "two keys", "idempotency_key": "a"},
        headers={"Idempotency-Key": "b"},
        timeout=10,
    )

    assert response.status_code == 409
    assert response.json()["error"] == "Conflict"
    assert stored("two keys") == []


def test_concurrent_requests_with_one_key_store_one_message(message_service):
    _, rpc, base_url, stored = message_service
    event = {"message": "at once", "payload": {"n": 3}, "idempotency_key": "burst"}

    over_rpc = [rpc.receive_message.call_async(event) for _ in range(10)]
    pool = eventlet.GreenPool()
    over_http = list(
        pool.imap(
            lambda _: requests.post(
                f"{base_url}/messages",
                json={"message": "at once", "payload": {"n": 3}},
                headers={"Idempotency-Key": "burst"},
                timeout=10,
            ),
            range(10),
        )
    )
    replies = [reply.result() for reply in over_rpc] + [response.json() for response in over_http]

    ids = stored("at once")
    assert len(ids) == 1
    assert replies == [{"id": ids[0], "status": "pending"}] * 20
