"""The published contracts: generated documents up to date, valid, and complete."""

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate

from common.contracts import (
    RPC,
    HeavyPayloadEvent,
    PayloadProcessed,
    ServiceShape,
    check_registry,
    documents,
    event_problem,
    main,
    service_shapes,
)

ROOT = Path(__file__).resolve().parents[3]
CONTRACTS = ROOT / "docs" / "contracts"


@pytest.fixture(scope="module")
def generated():
    return documents()


def test_the_committed_documents_are_what_the_models_generate(generated):
    for name, text in generated.items():
        assert (CONTRACTS / name).read_text() == text, f"{name} is stale: run `python -m common.contracts`"


def test_check_fails_on_a_stale_document_and_a_run_rewrites_it(tmp_path, capsys):
    assert main(["--out", str(tmp_path)]) == 0
    openapi = tmp_path / "openapi.yaml"
    openapi.write_text(openapi.read_text().replace("201", "200"))

    assert main(["--check", "--out", str(tmp_path)]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--check", "--out", str(tmp_path)]) == 0


def test_openapi_document_is_valid_openapi(generated):
    validate(yaml.safe_load(generated["openapi.yaml"]))


def test_asyncapi_document_is_valid_asyncapi_3(generated):
    schema = json.loads((Path(__file__).parent / "data" / "asyncapi-3.0.0-without-id.json").read_text())
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(yaml.safe_load(generated["asyncapi.yaml"])))

    assert errors == [], [f"{list(error.absolute_path)}: {error.message[:200]}" for error in errors]


def resolve(document: dict, ref: str):
    node = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


@pytest.mark.parametrize("name", ["asyncapi.yaml", "openapi.yaml"])
def test_every_reference_resolves(generated, name):
    document = yaml.safe_load(generated[name])
    found = set(refs(document))

    assert found
    for ref in found:
        resolve(document, ref)  # KeyError when dangling


def test_asyncapi_names_nameko_queues_exchanges_and_routing_keys(generated):
    document = yaml.safe_load(generated["asyncapi.yaml"])
    channels = document["channels"]

    assert {c["address"] for c in channels.values() if c["address"] and c["address"].startswith("rpc-")} == {
        "rpc-message_service",
        "rpc-time_consuming_service",
        "rpc-sender_service",
        "rpc-receiver_service",
    }
    event = channels["message_service.events.heavy_payload_event"]
    assert event["address"] == "heavy_payload_event"
    assert event["bindings"]["amqp"]["exchange"]["name"] == "message_service.events"
    handler = document["operations"]["time_consuming_service.time_consuming_event_handler"]
    assert (
        "evt-message_service-heavy_payload_event--time_consuming_service.time_consuming_event_handler"
        in (handler["summary"])
    )


def test_every_rpc_method_of_the_services_has_a_contract_and_no_contract_is_orphaned():
    shapes = service_shapes(
        ["message.service", "time_consuming.service", "sender.service", "receiver.service"]
    )

    check_registry(shapes)  # raises when one is missing
    assert {(s.name, m) for s in shapes for m in s.rpc_methods} == {
        (service, method) for service, methods in RPC.items() for method in methods
    }


def test_an_rpc_method_without_a_contract_is_refused():
    shapes = [ServiceShape("receiver_service", ["receive_event", "receipt_count", "forget_everything"], [])]
    with pytest.raises(SystemExit, match="receiver_service.forget_everything has no contract"):
        check_registry(shapes)


@pytest.mark.parametrize(
    "event, problem",
    [
        ({"message_id": "m-1", "payload": {"k": 1}}, None),
        ({"message_id": "m-1", "payload": None, "added_later": 1}, None),  # tolerant of new fields
        ({"message_id": "m-1"}, "invalid event: payload: Field required"),
        ({"message_id": 7, "payload": 1}, "invalid event: message_id: Input should be a valid string"),
        (
            {"message_id": "", "payload": 1},
            "invalid event: message_id: String should have at least 1 character",
        ),
        (["m-1"], "invalid event: expected a JSON object, got list"),
    ],
)
def test_heavy_payload_event_contract(event, problem):
    assert event_problem(HeavyPayloadEvent, event) == problem


@pytest.mark.parametrize(
    "event, valid",
    [
        ({"message_id": "m-1", "status": "done", "reason": None}, True),
        ({"message_id": "m-1", "status": "failed", "reason": "webhook failed"}, True),
        ({"message_id": "m-1", "status": "exploded"}, False),
        ({"status": "done"}, False),
    ],
)
def test_payload_processed_contract(event, valid):
    assert (event_problem(PayloadProcessed, event) is None) == valid
