"""Validation shared by RPC and HTTP: one schema, one error shape."""

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator

from common.errors import InvalidInput

MAX_MESSAGE_CHARS = 10_000
MAX_PAYLOAD_BYTES = 256 * 1024  # bigger blobs belong in object storage, not in an AMQP message


MAX_KEY_CHARS = 128
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold a NUL character


def strict_json_size(value) -> int:
    """Bytes of `value` as JSON; ValueError for NaN or infinities, which JSON (and PostgreSQL) lack
    but Python's json module, and so kombu's serializer, happily writes and reads."""
    return len(json.dumps(value, allow_nan=False).encode())


def lookup_key(value) -> str | None:
    """`value` as a primary-key string, or None when no row can have it: wrong type, empty, too long, or a
    NUL character (PostgreSQL text cannot hold one and errors rather than finding nothing)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    key = str(value)
    return key if 0 < len(key) <= MAX_KEY_CHARS and "\x00" not in key else None


class NewMessage(BaseModel):
    """What `message_service.receive_message` and `POST /messages` accept."""

    model_config = ConfigDict(extra="forbid", strict=True)

    # the pattern is for the published schema (common.contracts); message_is_storable enforces it
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, json_schema_extra={"pattern": NO_NUL})
    payload: JsonValue = None
    # Chosen by a client that retries: the same key with the same message gives the same result.
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=MAX_KEY_CHARS, json_schema_extra={"pattern": NO_NUL}
    )

    @field_validator("message", "idempotency_key")
    @classmethod
    def message_is_storable(cls, value):
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value

    @field_validator("payload")
    @classmethod
    def payload_fits(cls, payload):
        try:
            size = strict_json_size(payload)
        except ValueError:
            raise ValueError("payload must be JSON: NaN and Infinity are not") from None
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload is {size} bytes; the limit is {MAX_PAYLOAD_BYTES}")
        return payload

    @property
    def has_payload(self) -> bool:
        # null, {}, [] and "" all mean "nothing heavy to do", as in the article's `if event['payload']`.
        return self.payload not in (None, "", {}, [])

    def fingerprint(self) -> str:
        """A digest of what is stored (the key aside): two requests with one key must agree on it."""
        stored = {"message": self.message, "payload": self.payload if self.has_payload else None}
        return hashlib.sha256(json.dumps(stored, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def parse(schema: type[BaseModel], data: Any) -> BaseModel:
    """Validate `data` or raise `InvalidInput` listing every problem."""
    if not isinstance(data, dict):
        raise InvalidInput(f"expected a JSON object, got {type(data).__name__}")
    try:
        return schema.model_validate(data)
    except RecursionError:
        raise InvalidInput(f"invalid {schema.__name__}: nested too deeply") from None
    except ValidationError as error:
        problems = [
            {"field": ".".join(map(str, problem["loc"])) or None, "problem": problem["msg"]}
            for problem in error.errors(include_url=False, include_input=False)
        ]
        raise InvalidInput(f"invalid {schema.__name__}", problems) from None
