"""The published contracts (docs/contracts/) against the real services, as `nameko run` processes:
schemathesis drives message_service's HTTP interface from openapi.yaml, and every RPC method's
reply is checked against its model (common.contracts.RPC)."""

import subprocess

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from pydantic import TypeAdapter

from common.contracts import RPC
from testkit.localstack import running_stack
from testkit.processes import BIN, ROOT, wait_for

# Bounded: a few seconds of generated requests, reproducible from the seed.
SCHEMATHESIS = ["--checks", "all", "--max-examples", "25", "--seed", "1207", "--workers", "1"]


@pytest.fixture(scope="module")
def stack(amqp_uri, postgres, tmp_path_factory):
    store = tmp_path_factory.mktemp("objects")
    with running_stack(
        amqp_uri, postgres, tmp_path_factory.mktemp("contracts"), env={"LOCAL_STORE_DIR": str(store)}
    ) as local:
        yield local


def test_the_http_interface_answers_as_openapi_yaml_says(stack, tmp_path):
    web = f"http://{stack.instances['message-1'].web_address}"
    run = subprocess.run(
        [
            BIN / "schemathesis",
            "run",
            str(ROOT / "docs" / "contracts" / "openapi.yaml"),
            "--url",
            web,
            *SCHEMATHESIS,
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-database",
            "none",
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "Tested: 3" in run.stdout, run.stdout[-3000:]  # POST /messages, GET /messages/{id}, GET /health


def conforms(service: str, method: str, reply):
    TypeAdapter(RPC[service][method].result).validate_python(reply)
    return reply


def test_every_rpc_reply_conforms_to_its_model(stack, amqp_uri):
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=10) as n:
        receipt = conforms(
            "message_service",
            "receive_message",
            n.message_service.receive_message({"message": "contract", "payload": {"k": 1}}),
        )
        done = wait_for(
            lambda: (m := n.message_service.get_message(receipt["id"]))["status"] == "done" and m,
            message="the message to be done",
        )
        conforms("message_service", "get_message", done)
        conforms(
            "message_service", "redispatch_stuck", n.message_service.redispatch_stuck(older_than_seconds=600)
        )
        conforms("time_consuming_service", "get_job", n.time_consuming_service.get_job(receipt["id"]))
        assert (
            conforms("time_consuming_service", "get_job", n.time_consuming_service.get_job("no-such")) is None
        )
        conforms("sender_service", "send_event", n.sender_service.send_event({"id": "c-1", "message": "x"}))
        conforms("receiver_service", "receive_event", n.receiver_service.receive_event({"message": "y"}))
        conforms("receiver_service", "receipt_count", n.receiver_service.receipt_count())
