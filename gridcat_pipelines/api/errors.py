"""Connect's error shape and its code → HTTP status mapping for every API error."""

from __future__ import annotations

from typing import Any

from gridcat_pipelines.errors import GridcatError

# Connect protocol: https://connectrpc.com/docs/protocol#error-codes
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
}


class HttpError(Exception):
    """An error answered with an explicit HTTP status (405, 413, 415, 422) in Connect's shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details or [])
        self.headers = dict(headers or {})


def connect_error(error: GridcatError | HttpError) -> tuple[int, dict[str, Any]]:
    """``(http_status, {"code", "message", "details"})`` with Connect's lower-case code."""
    if isinstance(error, HttpError):
        status = error.status
    else:
        status = HTTP_STATUS.get(error.code, 500)
    return status, {"code": error.code.lower(), "message": error.message, "details": list(error.details)}
