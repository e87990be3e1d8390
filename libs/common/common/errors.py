"""Errors that cross service boundaries.

Registered with `deserialize_to_instance`, so an RPC caller that has this library installed
gets the same exception type back instead of a generic `RemoteError`.
"""

from nameko.exceptions import deserialize_to_instance


@deserialize_to_instance
class InvalidInput(ValueError):
    """The caller sent something the service cannot accept: args are (summary, problems)."""

    def __init__(self, summary: str, problems: list | None = None):
        super().__init__(summary, problems or [])
        self.summary = summary
        self.problems = problems or []

    def __str__(self):
        return self.summary


@deserialize_to_instance
class NotFound(LookupError):
    """The thing asked for does not exist."""


@deserialize_to_instance
class Conflict(ValueError):
    """The request contradicts what is stored: an idempotency key already used for another request."""
