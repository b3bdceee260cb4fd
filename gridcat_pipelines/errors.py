"""Typed errors shared by the store, the services, the CLI and the HTTP layer.

Every error carries one of a small set of codes (the gRPC/Connect names) so callers can
branch on the code, not on the message. A call that raises one of these changed nothing.
"""

from __future__ import annotations

from typing import Any

INVALID_ARGUMENT = "INVALID_ARGUMENT"
NOT_FOUND = "NOT_FOUND"
ALREADY_EXISTS = "ALREADY_EXISTS"
FAILED_PRECONDITION = "FAILED_PRECONDITION"
RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
UNAVAILABLE = "UNAVAILABLE"
INTERNAL = "INTERNAL"
UNAUTHENTICATED = "UNAUTHENTICATED"
PERMISSION_DENIED = "PERMISSION_DENIED"
ABORTED = "ABORTED"
UNIMPLEMENTED = "UNIMPLEMENTED"

CODES = (
    INVALID_ARGUMENT,
    NOT_FOUND,
    ALREADY_EXISTS,
    FAILED_PRECONDITION,
    RESOURCE_EXHAUSTED,
    UNAVAILABLE,
    INTERNAL,
    UNAUTHENTICATED,
    PERMISSION_DENIED,
    ABORTED,
    UNIMPLEMENTED,
)


class GridcatError(Exception):
    """An error with a stable code, a human message and optional structured details."""

    def __init__(self, code: str, message: str, details: list[Any] | None = None):
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = list(details or [])

    def to_dict(self) -> dict[str, Any]:
        """The error as the CLI and the API print it: ``{"code", "message", "details"}``."""
        return {"code": self.code, "message": self.message, "details": self.details}

    def __repr__(self) -> str:
        return f"GridcatError({self.code}, {self.message!r})"


def invalid_argument(message: str, *details: Any) -> GridcatError:
    """An ``INVALID_ARGUMENT`` error: the request itself is wrong."""
    return GridcatError(INVALID_ARGUMENT, message, list(details))


def not_found(message: str, *details: Any) -> GridcatError:
    """A ``NOT_FOUND`` error: the thing the request names does not exist."""
    return GridcatError(NOT_FOUND, message, list(details))


def failed_precondition(message: str, *details: Any) -> GridcatError:
    """A ``FAILED_PRECONDITION`` error: the system is not in the state the request needs."""
    return GridcatError(FAILED_PRECONDITION, message, list(details))
