"""Malformed, oversized and wrongly typed input thrown at every RPC method and HTTP route.

Each service runs in a real container on the real broker and PostgreSQL. Whatever hypothesis sends,
the answer is a typed error (`common.errors` over RPC, nameko's IncorrectSignature for a wrong
call shape) or a 4xx JSON body over HTTP, never an unexpected error; the service keeps serving and
what it had stored is unchanged.
"""

import json

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from nameko.exceptions import IncorrectSignature, MethodNotFound
from nameko.standalone.rpc import ClusterRpcProxy

from common.errors import InvalidInput, NotFound
from common.schemas import MAX_PAYLOAD_BYTES
from message.service import MessageService
from receiver.service import ReceiverService
from sender.service import SenderService
from testkit.processes import free_port
from time_consuming.service import TimeConsumingService

TYPED = (InvalidInput, NotFound, IncorrectSignature)
OVERSIZED = "x" * (MAX_PAYLOAD_BYTES + 1)

# Anything JSON can carry (NaN and infinities included: Python's json reads and writes them).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)
# Shapes close to valid ones find more than pure noise.
message_like = st.fixed_dictionaries(
    {"message": json_values | st.text()}, optional={"payload": json_values, "id": json_values}
)
event_like = json_values | st.fixed_dictionaries({"id": json_values}, optional={"message": json_values})
hostile = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class Client:
    """Holds a proxy out of hypothesis' sight: its pretty-printer would call `_repr_pretty_`,
    which a nameko proxy turns into a remote call."""

    def __init__(self, rpc, base_url=None):
        self.rpc, self.base_url = rpc, base_url

    def __repr__(self):
        return "Client()"


@pytest.fixture
def start(container_factory, service_config):
    def start(service_cls, service_dir, **overrides):
        config = service_config(service_dir, **overrides)
        container_factory(service_cls, config).start()
        return config

    return start


@pytest.fixture
def message_service(start):
    port = free_port()
    config = start(MessageService, "message", WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")
    with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
        rpc = cluster_rpc.message_service
        kept = rpc.receive_message({"message": "kept", "payload": {"safe": [1, 2]}})
        before = rpc.get_message(kept["id"])
        yield Client(rpc, f"http://127.0.0.1:{port}")
        assert rpc.get_message(kept["id"]) == before, "stored data changed"
        assert rpc.receive_message({"message": "still serving"})["status"] == "received"


@pytest.fixture
def receiver_rpc(start):
    config = start(ReceiverService, "receiver")
    with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
        rpc = cluster_rpc.receiver_service
        rpc.receive_event({"id": "kept", "message": "kept"})
        yield Client(rpc)
        assert rpc.receipt_count() >= 1
        assert rpc.receive_event("still serving") == "Event Received: still serving"


def call(method, *args, **kwargs):
    """The reply, or the typed error; any other exception fails the test."""
    try:
        return method(*args, **kwargs)
    except TYPED as error:
        return error


@hostile
@given(event=message_like | json_values)
@example(event={"message": "x", "payload": OVERSIZED})
@example(event={"message": OVERSIZED})
@example(event={"message": "nul \x00 byte"})
@example(event={"message": "x", "payload": float("nan")})
def test_receive_message(message_service, event):
    rpc = message_service.rpc

    reply = call(rpc.receive_message, event)

    if not isinstance(reply, InvalidInput):
        assert rpc.get_message(reply["id"])["message"] == event["message"]


@hostile
@given(message_id=json_values)
@example(message_id="x" * 100_000)
def test_get_message(message_service, message_id):
    rpc = message_service.rpc

    assert isinstance(call(rpc.get_message, message_id), NotFound)


@hostile
@given(body=st.binary(max_size=512) | message_like.map(lambda event: json.dumps(event).encode()))
@example(body=b'{"message": "x", "payload": "' + OVERSIZED.encode() + b'"}')
@example(body=b"\xff\xfe not utf-8")
def test_post_messages(message_service, body):
    base_url = message_service.base_url

    response = requests.post(f"{base_url}/messages", data=body, timeout=10)

    assert response.status_code in (201, 400), response.text
    assert response.headers["Content-Type"] == "application/json"
    assert ("id" if response.status_code == 201 else "error") in response.json()


@hostile
@given(message_id=st.text(min_size=1, max_size=300))
@example(message_id="/")
def test_get_messages_by_id(message_service, message_id):
    base_url = message_service.base_url

    response = requests.get(f"{base_url}/messages/{requests.utils.quote(message_id, safe='')}", timeout=10)

    # An id that is no message, or a path that is no route ("/" decodes into one): 404 in JSON, both.
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "NotFound"


@hostile
@given(event=event_like)
@example(event={"id": "x" * 1000})
@example(event={"id": "nul \x00"})
@example(event={"id": 1, "value": float("nan")})
def test_receive_event(receiver_rpc, event):
    reply = call(receiver_rpc.rpc.receive_event, event)

    assert isinstance(reply, InvalidInput) or reply == f"Event Received: {event}"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nowhere", 404), ("DELETE", "/messages", 405), ("PUT", "/health", 405)],
)
def test_unknown_routes_and_methods_answer_json(message_service, method, path, status):
    response = requests.request(method, message_service.base_url + path, timeout=10)

    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"] in ("NotFound", "MethodNotAllowed")


def test_wrong_call_shapes_are_typed_errors(receiver_rpc, message_service):
    rpc = message_service.rpc
    with pytest.raises(IncorrectSignature):
        receiver_rpc.rpc.receive_event()
    with pytest.raises(IncorrectSignature):
        receiver_rpc.rpc.receive_event("a", "b", extra=1)
    with pytest.raises(IncorrectSignature):
        rpc.get_message(message_id="x", other="y")
    with pytest.raises(MethodNotFound):
        receiver_rpc.rpc.no_such_method()


@hostile
@given(event=event_like)
def test_send_event(start, receiver_rpc, event):
    config = start(SenderService, "sender")
    with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
        reply = call(cluster_rpc.sender_service.send_event, event)

    assert isinstance(reply, InvalidInput) or reply == f"Event Received: {event}"


@hostile
@given(message_id=json_values)
def test_get_job(start, message_id):
    config = start(TimeConsumingService, "time_consuming")
    with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
        assert call(cluster_rpc.time_consuming_service.get_job, message_id) is None
