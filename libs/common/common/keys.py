"""Keys and JSON checks every service needs, without pydantic: the receiver uses these and no model,
so it does not pay pydantic's memory (`make bench`, "What the extra memory is")."""

import json

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
