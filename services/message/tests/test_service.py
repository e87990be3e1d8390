"""message_service in a real container: real broker, real PostgreSQL, real HTTP."""

import pytest
import requests
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy

from common.dead_letters import list_dead_letters
from common.errors import InvalidInput, NotFound
from common.schemas import MAX_PAYLOAD_BYTES
from message.service import MessageService
from testkit.processes import free_port, wait_for


@pytest.fixture
def message_service(container_factory, service_config):
    port = free_port()
    config = service_config("message", WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")
    container_factory(MessageService, config).start()
    with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
        yield cluster_rpc.message_service, f"http://127.0.0.1:{port}"


def test_a_message_is_stored_and_read_back_over_rpc(message_service):
    rpc, _ = message_service

    stored = rpc.receive_message({"message": "Hello World!!"})
    read = rpc.get_message(stored["id"])

    assert stored["status"] == "received"
    assert read["id"] == stored["id"]
    assert read["message"] == "Hello World!!"
    assert read["status"] == "received"


def test_a_message_with_payload_waits_for_time_consuming_service(message_service):
    rpc, _ = message_service

    stored = rpc.receive_message({"message": "upload this", "payload": {"rows": [1, 2, 3]}})

    assert stored["status"] == "pending"
    assert rpc.get_message(stored["id"])["payload"] == {"rows": [1, 2, 3]}


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        {"payload": 1},
        {"message": None},
        {"message": "x", "payload": "y" * MAX_PAYLOAD_BYTES},
    ],
)
def test_bad_input_is_a_typed_remote_error_and_the_service_keeps_serving(message_service, event):
    rpc, _ = message_service

    with pytest.raises(InvalidInput) as error:
        rpc.receive_message(event)

    assert error.value.summary
    assert rpc.receive_message({"message": "still here"})["status"] == "received"


def test_an_unknown_id_is_not_found(message_service):
    rpc, _ = message_service

    with pytest.raises(NotFound):
        rpc.get_message("no-such-id")


def test_http_round_trip(message_service):
    _, base_url = message_service

    created = requests.post(f"{base_url}/messages", json={"message": "over http", "payload": [1]}, timeout=10)
    read = requests.get(f"{base_url}/messages/{created.json()['id']}", timeout=10)

    assert created.status_code == 201
    assert created.json()["status"] == "pending"
    assert read.status_code == 200
    assert read.headers["Content-Type"] == "application/json"
    assert read.json()["message"] == "over http"


@pytest.mark.parametrize(
    ("body", "problem_field"),
    [
        ('{"message": 1}', "message"),
        ('{"mesage": "typo"}', "mesage"),
        ("not json", None),
        ("[]", None),
    ],
)
def test_http_bad_input_is_a_400_with_a_json_body(message_service, body, problem_field):
    _, base_url = message_service

    response = requests.post(
        f"{base_url}/messages", data=body, headers={"Content-Type": "application/json"}, timeout=10
    )

    assert response.status_code == 400
    assert response.json()["error"] == "InvalidInput"
    if problem_field:
        assert problem_field in {problem["field"] for problem in response.json()["problems"]}


def test_http_unknown_message_is_a_404_with_a_json_body(message_service):
    _, base_url = message_service

    response = requests.get(f"{base_url}/messages/missing", timeout=10)

    assert response.status_code == 404
    assert response.json() == {"error": "NotFound", "message": "no message with id 'missing'"}


def test_health(message_service):
    _, base_url = message_service

    response = requests.get(f"{base_url}/health", timeout=10)

    assert response.json() == {"status": "ok", "service": "message_service"}


def test_redispatch_stuck_hands_over_only_messages_pending_for_longer_than_asked(message_service):
    rpc, _ = message_service
    pending = rpc.receive_message({"message": "waiting", "payload": {"n": 1}})
    rpc.receive_message({"message": "nothing to do"})

    recent_only = rpc.redispatch_stuck(600)
    all_pending = rpc.redispatch_stuck(0)
    just_touched = rpc.redispatch_stuck(600)

    assert recent_only == []
    assert all_pending == [pending["id"]]
    assert rpc.get_message(pending["id"])["status"] == "pending"
    assert just_touched == []  # a redispatched message waits another `older_than` before the next try


@pytest.mark.parametrize("older_than", [-1, "10", None])
def test_redispatch_stuck_rejects_a_bad_age(message_service, older_than):
    rpc, _ = message_service

    with pytest.raises(InvalidInput):
        rpc.redispatch_stuck(older_than)


@pytest.fixture
def outcomes_service(container_factory, service_config, own_vhost):
    """message_service on a vhost of its own, with a dead-letter queue of its own."""
    _, amqp_uri = own_vhost
    config = service_config(
        "message",
        AMQP_URI=amqp_uri,
        WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}",
        DEAD_LETTER_QUEUE="dead-letters-outcomes",
    )
    container_factory(MessageService, config).start()
    with ClusterRpcProxy(config, timeout=10) as cluster_rpc:
        yield config, cluster_rpc.message_service, event_dispatcher(config)


def report(dispatch, outcome):
    dispatch("time_consuming_service", "payload_processed", outcome)


def test_a_late_failed_outcome_never_overwrites_done(outcomes_service):
    config, rpc, dispatch = outcomes_service
    message_id = rpc.receive_message({"message": "m", "payload": {"n": 1}})["id"]

    report(dispatch, {"message_id": message_id, "status": "done"})
    wait_for(lambda: rpc.get_message(message_id)["status"] == "done", message="done")
    report(dispatch, {"message_id": message_id, "status": "failed", "reason": "an earlier attempt's report"})
    report(dispatch, {"message_id": "no-such-message", "status": "done"})  # parked: after the one above
    wait_for(lambda: list_dead_letters(config), message="the unknown message's outcome parked")

    assert rpc.get_message(message_id)["status"] == "done"


def test_an_invalid_or_unknown_outcome_is_parked_at_once_with_its_reason(outcomes_service):
    config, rpc, dispatch = outcomes_service

    report(dispatch, {"message_id": "no-such-message", "status": "done"})
    report(dispatch, ["not", "an", "outcome"])
    letters = wait_for(lambda: len(list_dead_letters(config)) == 2 and list_dead_letters(config), message="2")

    assert sorted(letter["reason"] for letter in letters) == [
        "invalid event: expected a JSON object, got list",
        "no message with id 'no-such-message'",
    ]
    assert {letter["event"] for letter in letters} == {"time_consuming_service.events/payload_processed"}


def test_an_outcome_against_the_published_contract_is_parked_and_records_nothing(outcomes_service):
    config, rpc, dispatch = outcomes_service
    message_id = rpc.receive_message({"message": "m", "payload": [1]})["id"]

    report(dispatch, {"message_id": message_id, "status": "exploded"})
    letters = wait_for(lambda: list_dead_letters(config), message="the invalid outcome parked")
    assert rpc.get_message(message_id)["status"] == "pending"
    assert [letter["reason"] for letter in letters] == [
        "invalid event: status: Input should be 'done' or 'failed'"
    ]

    report(dispatch, {"message_id": message_id, "status": "done"})
    wait_for(lambda: rpc.get_message(message_id)["status"] == "done", message="the valid outcome recorded")
