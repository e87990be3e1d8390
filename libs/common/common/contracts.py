"""Published contracts: what every RPC method takes and returns, what both events carry, and the
documents generated from them (AsyncAPI 3 for RabbitMQ, OpenAPI 3.1 for message_service's HTTP).

    python -m common.contracts            # (re)writes docs/contracts/asyncapi.yaml and openapi.yaml
    python -m common.contracts --check    # exit 1 when those files differ from what the models say

The models are the one place a contract lives: message_service validates `NewMessage` (in
common.schemas) and the event handlers validate their events with the models below; the documents
are generated, so a change that breaks a contract shows in review as a diff of docs/contracts/.
Queue, exchange and routing-key names come from nameko itself (its templates, and the services'
own entrypoints, imported as `nameko run` imports them), never typed here.
"""

import argparse
import sys
import warnings
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter
from pydantic.json_schema import models_json_schema

from common.errors import InvalidInput
from common.keys import MAX_KEY_CHARS, NO_NUL
from common.schemas import NewMessage, parse

VERSION = "1.0.0"
DEFAULT_OUT = Path("docs/contracts")
SERVICE_MODULES = ["message.service", "time_consuming.service", "sender.service", "receiver.service"]

Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY_CHARS, pattern=NO_NUL)]


# The states the services store and publish. StrEnums, so a state is its stored string: the database
# columns and the events hold the same values as before the enums (no migration).
class MessageStatus(StrEnum):
    """A message's states (message.messages says what each means)."""

    RECEIVED = "received"
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class JobState(StrEnum):
    """A job's states (time_consuming.jobs says what each means)."""

    PENDING = "pending"
    UPLOADED = "uploaded"
    NOTIFIED = "notified"
    FAILED = "failed"


class OutcomeStatus(StrEnum):
    """How time_consuming_service's work for a message ended: the `payload_processed` event's status."""

    DONE = "done"
    FAILED = "failed"


def one_of(*states: StrEnum):
    """The states as a `Literal` of their strings: the documents list the values, and strict models
    (events) take the plain strings an event carries."""
    return Literal[tuple(state.value for state in states)]


# -- message_service --------------------------------------------------------------------------


class MessageReceipt(BaseModel):
    """What `receive_message` / `POST /messages` return: the stored message's id and status."""

    id: str
    status: one_of(MessageStatus.RECEIVED, MessageStatus.PENDING)


class StoredMessage(BaseModel):
    """A message as `get_message` / `GET /messages/{message_id}` return it."""

    id: str
    message: str
    payload: JsonValue
    status: one_of(*MessageStatus)
    reason: str | None = Field(description="why it failed, when status is `failed`")
    created_at: datetime
    updated_at: datetime


class ReceiveMessage(BaseModel):
    event: NewMessage


class GetMessage(BaseModel):
    message_id: str


class RedispatchStuck(BaseModel):
    older_than_seconds: float = Field(600, ge=0, description="hand over messages pending for longer")


class Health(BaseModel):
    status: Literal["ok"]
    service: str


class Problem(BaseModel):
    field: str | None
    problem: str


class Error(BaseModel):
    """Every 4xx of the HTTP interface: the error's type, a summary, and for invalid input each problem."""

    error: str = Field(description="InvalidInput, NotFound, Conflict, ...")
    message: str
    problems: list[Problem] | None = None


# -- time_consuming_service -------------------------------------------------------------------


class Job(BaseModel):
    """One job per message id: pending -> uploaded -> notified | failed."""

    message_id: str
    state: one_of(*JobState)
    attempts: int
    object_key: str | None
    last_error: str | None


class GetJob(BaseModel):
    message_id: str


# -- sender_service / receiver_service --------------------------------------------------------


class ReceiverEvent(BaseModel):
    """Any JSON object; one with an `id` is recorded once however often it is delivered."""

    model_config = ConfigDict(extra="allow")

    id: str | int | None = Field(None, description="1..128 chars without NUL; absent = not deduplicated")


class ReceiveEvent(BaseModel):
    event: ReceiverEvent


class SendEvent(BaseModel):
    event: ReceiverEvent


class NoArguments(BaseModel):
    pass


# -- events -----------------------------------------------------------------------------------


class HeavyPayloadEvent(BaseModel):
    """message_service -> time_consuming_service: a stored message's payload to upload and notify."""

    # Unknown fields are ignored, so a producer can add one without breaking consumers.
    model_config = ConfigDict(strict=True, extra="ignore")

    message_id: Key
    payload: JsonValue


class PayloadProcessed(BaseModel):
    """time_consuming_service -> message_service: how the work for a message ended."""

    model_config = ConfigDict(strict=True, extra="ignore")

    message_id: Key
    status: one_of(*OutcomeStatus)
    reason: str | None = None


def parse_event(model: type[BaseModel], event) -> BaseModel:
    """The event as `model`, or `InvalidInput` whose message says every problem (for dead letters)."""
    try:
        return parse(model, event)
    except InvalidInput as error:
        found = "; ".join(
            f"{p['field']}: {p['problem']}" if p["field"] else p["problem"] for p in error.problems
        )
        raise InvalidInput(f"invalid event: {found or error.summary}") from None


def event_problem(model: type[BaseModel], event) -> str | None:
    """None when `event` satisfies `model`, else the reason it is invalid (for logs, dead letters)."""
    try:
        parse_event(model, event)
    except InvalidInput as error:
        return str(error)
    return None


# -- the registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rpc:
    arguments: type[BaseModel]  # the keyword arguments; positional ones follow the same order
    result: Any
    summary: str
    errors: tuple[str, ...] = ()


RPC = {
    "message_service": {
        "receive_message": Rpc(
            ReceiveMessage, MessageReceipt, "Store a message, once per request", ("InvalidInput", "Conflict")
        ),
        "get_message": Rpc(GetMessage, StoredMessage, "A stored message", ("NotFound",)),
        "redispatch_stuck": Rpc(
            RedispatchStuck,
            list[str],
            "Hand messages stuck in pending over again (the cron job)",
            ("InvalidInput",),
        ),
    },
    "time_consuming_service": {"get_job": Rpc(GetJob, Job | None, "The job for a message id, or null")},
    "sender_service": {
        "send_event": Rpc(SendEvent, str, "receiver_service.receive_event's reply", ("InvalidInput",))
    },
    "receiver_service": {
        "receive_event": Rpc(ReceiveEvent, str, 'Exactly f"Event Received: {event}"', ("InvalidInput",)),
        "receipt_count": Rpc(NoArguments, int, "How many distinct event ids were received"),
    },
}

EVENTS = {  # (source service, event type): its body
    ("message_service", "heavy_payload_event"): HeavyPayloadEvent,
    ("time_consuming_service", "payload_processed"): PayloadProcessed,
}


# -- the documents ----------------------------------------------------------------------------

SCHEMAS_REF = "#/components/schemas/{model}"


def schema_of(annotation) -> dict:
    """JSON Schema of any annotation, its models referenced in components/schemas."""
    schema = TypeAdapter(annotation).json_schema(ref_template=SCHEMAS_REF)
    schema.pop("$defs", None)  # collected once, in components_schemas()
    return schema


def components_schemas() -> dict:
    models = [
        NewMessage,
        MessageReceipt,
        StoredMessage,
        Health,
        Error,
        Job,
        ReceiverEvent,
        HeavyPayloadEvent,
        PayloadProcessed,
        *(rpc.arguments for methods in RPC.values() for rpc in methods.values()),
    ]
    _, top = models_json_schema(
        [(model, "validation") for model in dict.fromkeys(models)], ref_template=SCHEMAS_REF
    )
    return dict(sorted(top["$defs"].items()))


@dataclass
class ServiceShape:
    """What nameko makes of a service class: its name, RPC methods and event handlers."""

    name: str
    rpc_methods: list[str]
    handlers: list[tuple[str, str, str, str]]  # (method, source service, event type, queue name)


def service_shapes(modules: list[str]) -> list[ServiceShape]:
    with warnings.catch_warnings():  # importing nameko's CLI warns about eventlet's deprecation
        warnings.simplefilter("ignore")
        from nameko.cli.run import import_service
    from nameko.containers import ServiceContainer
    from nameko.events import EventHandler
    from nameko.rpc import Rpc as RpcEntrypoint

    shapes = []
    for module in modules:
        for service_cls in import_service(module):
            container = ServiceContainer(service_cls, {"AMQP_URI": "memory://"})
            rpc_methods, handlers = [], []
            for entrypoint in sorted(container.entrypoints, key=lambda e: e.method_name):
                if isinstance(entrypoint, RpcEntrypoint):
                    rpc_methods.append(entrypoint.method_name)
                elif isinstance(entrypoint, EventHandler):
                    # nameko's own setup builds the kombu Queue it would declare (no settings read)
                    EventHandler.setup(entrypoint)
                    handlers.append(
                        (
                            entrypoint.method_name,
                            entrypoint.source_service,
                            entrypoint.event_type,
                            entrypoint.queue.name,
                        )
                    )
            shapes.append(ServiceShape(container.service_name, rpc_methods, handlers))
    return shapes


def check_registry(shapes: list[ServiceShape]) -> None:
    """Every RPC method and handled event has a contract, and every contract an implementation."""
    implemented = {(shape.name, method) for shape in shapes for method in shape.rpc_methods}
    documented = {(service, method) for service, methods in RPC.items() for method in methods}
    handled = {(source, event_type) for shape in shapes for _, source, event_type, _ in shape.handlers}
    problems = [f"RPC {s}.{m} has no contract in common.contracts.RPC" for s, m in implemented - documented]
    problems += [f"RPC contract {s}.{m} is implemented by no service" for s, m in documented - implemented]
    problems += [f"event {s}/{e} is handled but has no contract" for s, e in handled - set(EVENTS)]
    if problems:
        raise SystemExit("contracts: " + "; ".join(sorted(problems)))


def rpc_request_schema(rpc: Rpc) -> dict:
    return {
        "type": "object",
        "description": "nameko's RPC body: the arguments, by keyword or in this order by position",
        "properties": {
            "args": {"type": "array", "maxItems": len(rpc.arguments.model_fields)},
            "kwargs": {"$ref": SCHEMAS_REF.format(model=rpc.arguments.__name__)},
        },
        "required": ["args", "kwargs"],
    }


def rpc_reply_schema(rpc: Rpc) -> dict:
    remote_error = {
        "type": "object",
        "description": "the exception the method raised; "
        + (", ".join(rpc.errors) + " are expected" if rpc.errors else "no expected errors"),
        "properties": {
            "exc_type": {"type": "string", **({"enum": list(rpc.errors)} if rpc.errors else {})},
            "exc_path": {"type": "string"},
            "exc_args": {"type": "array"},
            "value": {"type": "string"},
        },
    }
    return {
        "type": "object",
        "description": "nameko's RPC reply: the result, or the error",
        "properties": {"result": schema_of(rpc.result), "error": {"oneOf": [{"type": "null"}, remote_error]}},
        "required": ["result", "error"],
    }


def asyncapi(shapes: list[ServiceShape]) -> dict:
    from nameko.rpc import RPC_QUEUE_TEMPLATE, get_rpc_exchange
    from nameko.standalone.events import get_event_exchange

    check_registry(shapes)
    rpc_exchange = get_rpc_exchange({}).name
    channels, operations, messages = {}, {}, {}
    amqp = {"bindingVersion": "0.3.0"}
    channels["rpc-replies"] = {
        "address": None,
        "description": f"the caller's reply queue (`rpc.reply-...`), bound to `{rpc_exchange}` by the "
        "routing key in the request's `reply_to` property; the reply has the request's `correlation_id`",
        "messages": {},
    }
    for shape in shapes:
        methods = RPC.get(shape.name, {})
        if not shape.rpc_methods:
            continue
        queue = RPC_QUEUE_TEMPLATE.format(shape.name)
        channel = {
            "address": queue,
            "title": f"{shape.name} RPC",
            "description": f"`{shape.name}`'s RPC queue, bound to the topic exchange `{rpc_exchange}` "
            f"with `{shape.name}.*`; a request for METHOD is published there with routing key "
            f"`{shape.name}.METHOD`",
            "messages": {},
            "bindings": {
                "amqp": {
                    **amqp,
                    "is": "queue",
                    "queue": {"name": queue, "durable": True, "exclusive": False, "autoDelete": False},
                }
            },
        }
        for method in shape.rpc_methods:
            rpc = methods[method]
            request, reply = f"{shape.name}.{method}.request", f"{shape.name}.{method}.reply"
            messages[request] = {
                "name": request,
                "title": f"{shape.name}.{method}",
                "summary": rpc.summary,
                "payload": rpc_request_schema(rpc),
                "bindings": {"amqp": {**amqp, "messageType": f"{shape.name}.{method}"}},
            }
            messages[reply] = {"name": reply, "payload": rpc_reply_schema(rpc)}
            channel["messages"][f"{method}.request"] = {"$ref": f"#/components/messages/{request}"}
            channels["rpc-replies"]["messages"][reply] = {"$ref": f"#/components/messages/{reply}"}
            operations[f"{shape.name}.{method}"] = {
                "action": "receive",
                "summary": rpc.summary,
                "channel": {"$ref": f"#/channels/{queue}"},
                "messages": [{"$ref": f"#/channels/{queue}/messages/{method}.request"}],
                "reply": {
                    "address": {"location": "$message.header#/reply_to"},
                    "channel": {"$ref": "#/channels/rpc-replies"},
                    "messages": [{"$ref": f"#/channels/rpc-replies/messages/{reply}"}],
                },
            }
        channels[queue] = channel
    for (source, event_type), model in EVENTS.items():
        exchange = get_event_exchange(source, {})
        key = f"{exchange.name}.{event_type}"  # no "/": it would need escaping in $ref pointers
        messages[event_type] = {
            "name": event_type,
            "summary": model.__doc__.strip().splitlines()[0],
            "payload": {"$ref": SCHEMAS_REF.format(model=model.__name__)},
        }
        channels[key] = {
            "address": event_type,
            "title": f"{source} {event_type}",
            "description": f"published by `{source}` to the exchange `{exchange.name}` "
            f"with routing key `{event_type}`",
            "messages": {event_type: {"$ref": f"#/components/messages/{event_type}"}},
            "bindings": {
                "amqp": {
                    **amqp,
                    "is": "routingKey",
                    "exchange": {
                        "name": exchange.name,
                        "type": exchange.type,
                        "durable": exchange.durable,
                        "autoDelete": bool(exchange.auto_delete),
                        "vhost": "/",
                    },
                }
            },
        }
        operations[f"{source}.dispatch.{event_type}"] = {
            "action": "send",
            "summary": f"{source} dispatches {event_type}",
            "channel": {"$ref": f"#/channels/{key}"},
            "messages": [{"$ref": f"#/channels/{key}/messages/{event_type}"}],
        }
        for shape in shapes:
            for method, handled_source, handled_type, queue in shape.handlers:
                if (handled_source, handled_type) == (source, event_type):
                    operations[f"{shape.name}.{method}"] = {
                        "action": "receive",
                        "summary": f"{shape.name} handles {event_type} from its queue `{queue}`",
                        "channel": {"$ref": f"#/channels/{key}"},
                        "messages": [{"$ref": f"#/channels/{key}/messages/{event_type}"}],
                        "bindings": {"amqp": {**amqp, "ack": True}},
                    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Nameko reference application: RPC and events",
            "version": VERSION,
            "description": "Generated by `python -m common.contracts` from common/contracts.py; do not edit. "
            "Bodies are JSON (nameko's `serializer: json`); nameko's context travels in `nameko.*` headers "
            "(call id stack, W3C `traceparent`).",
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "host": "localhost:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "pathname": "/",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": components_schemas(), "messages": messages},
    }


IDEMPOTENCY_KEY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "the same key with the same body gives the same message; with another body, 409",
    # What message_service's intake enforces on the key (NewMessage.idempotency_key); schemathesis
    # checks it (tests/e2e/test_contracts.py).
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS},
}


def json_content(annotation_or_model) -> dict:
    return {"application/json": {"schema": schema_of(annotation_or_model)}}


def error_response(description: str) -> dict:
    return {"description": description, "content": json_content(Error)}


def openapi() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "message_service HTTP interface",
            "version": VERSION,
            "description": "Generated by `python -m common.contracts` from common/contracts.py; do not edit. "
            "The same validation and shapes as the RPC methods `receive_message` and `get_message`.",
        },
        "servers": [{"url": "http://localhost:8000"}],
        "paths": {
            "/messages": {
                "post": {
                    "operationId": "post_message",
                    "summary": "Store a message (RPC receive_message)",
                    "parameters": [IDEMPOTENCY_KEY_HEADER],
                    "requestBody": {"required": True, "content": json_content(NewMessage)},
                    "responses": {
                        "201": {"description": "stored", "content": json_content(MessageReceipt)},
                        "400": error_response("InvalidInput: not JSON, or not a valid NewMessage"),
                        "409": error_response(
                            "Conflict: the Idempotency-Key was used with another body, or differs from the "
                            "body's idempotency_key"
                        ),
                        "411": error_response("LengthRequired: a chunked body; send a Content-Length"),
                        "413": error_response("RequestEntityTooLarge: the body is over HTTP_MAX_BODY_BYTES"),
                    },
                }
            },
            "/messages/{message_id}": {
                "get": {
                    "operationId": "get_message",
                    "summary": "A stored message (RPC get_message)",
                    "parameters": [
                        {"name": "message_id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {"description": "the message", "content": json_content(StoredMessage)},
                        "404": error_response("NotFound: no message with that id"),
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "The service answers and its database too",
                    "responses": {"200": {"description": "healthy", "content": json_content(Health)}},
                }
            },
        },
        "components": {"schemas": components_schemas()},
    }


def render(document: dict) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)


def documents(modules: list[str] = SERVICE_MODULES) -> dict[str, str]:
    """File name -> generated text."""
    return {"asyncapi.yaml": render(asyncapi(service_shapes(modules))), "openapi.yaml": render(openapi())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="nameko-contracts", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where the documents go (docs/contracts)"
    )
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, text in documents().items():
        path = args.out / name
        if path.exists() and path.read_text() == text:
            continue
        stale.append(str(path))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.check and stale:
        print(f"contracts: stale: {', '.join(stale)}; run `python -m common.contracts`", file=sys.stderr)
        return 1
    print(
        f"contracts: {'stale' if args.check and stale else 'up to date' if not stale else 'written'}: "
        f"{', '.join(str(args.out / name) for name in ('asyncapi.yaml', 'openapi.yaml'))}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
