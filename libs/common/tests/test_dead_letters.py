"""`nameko-dead-letters` as a user runs it, against the run's vhost on the real broker."""

import json
import subprocess
import uuid

import yaml
from kombu import Connection, Queue

from common.dead_letters import DeadLetterQueue, events_exchange
from common.settings import RetrySettings, validate
from testkit.processes import BIN, ROOT, wait_for


def run(config_path, *arguments) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "nameko-dead-letters", *arguments, "--config", config_path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_list_shows_reasons_and_replay_republishes_one_message(amqp_uri, tmp_path):
    config = {"AMQP_URI": amqp_uri, "DEAD_LETTER_QUEUE": f"dead-letters-{uuid.uuid4().hex[:8]}"}
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    dead_letters = DeadLetterQueue(config, validate(config, RetrySettings), "time_consuming_service")
    dead_letters.park(
        {"message_id": "m-a", "payload": 1}, "HTTP 404", "message_service", "heavy_payload_event"
    )
    dead_letters.park(
        {"message_id": "m-b", "payload": 2}, "HTTP 410", "message_service", "heavy_payload_event"
    )
    replayed_to = Queue(
        f"replayed-{uuid.uuid4().hex[:8]}",
        exchange=events_exchange("message_service", config),
        routing_key="heavy_payload_event",
        auto_delete=True,
    )
    with Connection(amqp_uri) as connection:
        replayed_to.bind(connection.default_channel).declare()

        listed = run(config_path, "list")
        replayed = run(config_path, "replay", "--message-id", "m-b")
        after = run(config_path, "list")
        arrived = replayed_to.bind(connection.default_channel).get(no_ack=True)

    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == f"2 dead letter(s) in {config['DEAD_LETTER_QUEUE']}"
    assert [(json.loads(line)["body"]["message_id"], json.loads(line)["reason"]) for line in lines[1:]] == [
        ("m-a", "HTTP 404"),
        ("m-b", "HTTP 410"),
    ]
    assert replayed.stdout.splitlines()[0] == "replayed 1 dead letter(s)"
    assert after.stdout.splitlines()[0] == f"1 dead letter(s) in {config['DEAD_LETTER_QUEUE']}"
    assert json.loads(after.stdout.splitlines()[1])["body"]["message_id"] == "m-a"
    assert arrived.decode() == {"message_id": "m-b", "payload": 2}


def test_an_unreachable_broker_exits_2(tmp_path):
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump({"AMQP_URI": "amqp://guest:guest@127.0.0.1:1/"}))

    result = run(config_path, "list")

    assert result.returncode == 2
    assert "cannot use the broker" in result.stderr


def test_parking_reuses_one_pooled_connection(own_vhost, rabbit_admin):
    vhost, amqp_uri = own_vhost
    config = {"AMQP_URI": amqp_uri}
    dead_letters = DeadLetterQueue(config, validate(config, RetrySettings), "time_consuming_service")

    for number in range(5):
        dead_letters.park({"message_id": f"m-{number}"}, "HTTP 404", "message_service", "heavy_payload_event")

    # one connection, kept open for the next park (a connection per park would leave none open)
    connections = wait_for(
        lambda: [c for c in rabbit_admin.request("GET", "connections") if c["vhost"] == vhost],
        message="the pooled connection listed",
    )
    assert len(connections) == 1
    with Connection(amqp_uri) as connection:
        assert connection.default_channel.queue_declare("dead-letters", passive=True).message_count == 5
