"""What a failed Google Ads API call means for a pull: retry (after how long), fix the
configuration, or give up, plus one line that says what the API said.

Errors arrive in several shapes (google-ads 34.0.0, ``use_proto_plus: False``):

- ``GoogleAdsException`` (``.error`` the ``grpc.RpcError``, ``.failure`` the parsed
  ``GoogleAdsFailure``, ``.request_id``): what the library raises for most API errors;
- a bare ``grpc.RpcError`` call (``.code()``, ``.details()``, ``.trailing_metadata()``): the
  library does not wrap ``RESOURCE_EXHAUSTED`` and ``INTERNAL``; their ``GoogleAdsFailure``
  (with ``quota_error_details.retry_delay``) sits in the trailing metadata under
  ``google.ads.googleads.<version>.errors.googleadsfailure-bin``;
- ``google.api_core.exceptions.GoogleAPICallError`` (e.g. ``ResourceExhausted``) when the
  call went through the generated service client: the call is ``.response``;
- ``google.auth`` ``RefreshError`` (``.retryable`` False: the token endpoint rejected the
  credentials) and ``TransportError`` (the token endpoint could not be reached);
- ``ConnectionError`` / ``TimeoutError``.

Only names and attributes are looked at, so this module imports neither grpc nor google-ads
until a ``GoogleAdsFailure`` has to be decoded from metadata.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# gRPC statuses worth retrying, and those that mean "the credentials or access are wrong".
RETRYABLE_STATUSES = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "ABORTED"})
REJECTED_STATUSES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})
# GoogleAdsFailure error kinds (the set field of ErrorCode) and what they mean.
_REJECTED_KINDS = frozenset({"authentication_error", "authorization_error", "header_error"})
_RETRYABLE_KINDS = frozenset({"internal_error"})
_RETRYABLE_QUOTA = frozenset(
    {
        "RESOURCE_EXHAUSTED",
        "RESOURCE_TEMPORARILY_EXHAUSTED",
        "EXCESSIVE_SHORT_TERM_QUERY_RESOURCE_CONSUMPTION",
        "EXCESSIVE_LONG_TERM_QUERY_RESOURCE_CONSUMPTION",
    }
)
FAILURE_KEY_SUFFIX = ".errors.googleadsfailure-bin"


@dataclass(frozen=True)
class CallFailure:
    """One failed call, classified."""

    status: str  # gRPC status name (UNAVAILABLE, ...), or the exception's type name
    detail: str  # one line: the status, each GoogleAdsError (kind=CODE: message), the request id
    retryable: bool  # worth another attempt (quota, transient)
    rejected: bool  # credentials or access rejected: only a configuration change helps
    retry_delay: float | None = None  # seconds the API asked to wait (QuotaErrorDetails.retry_delay)

    @property
    def quota(self) -> bool:
        """A quota error that says how long to wait."""
        return self.retry_delay is not None


def classify(exc: BaseException, version: str) -> CallFailure:
    """Classify an exception raised by a Google Ads API call (or by building the client)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "RefreshError" in names:  # google.auth: the token endpoint answered, with an error
        retryable = bool(getattr(exc, "retryable", False))
        status = "UNAVAILABLE" if retryable else "UNAUTHENTICATED"
        text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else exc  # args[1]: the response body
        return CallFailure(status, f"{status}: OAuth token refresh failed: {_one_line(text)}", retryable, not retryable)
    if "TransportError" in names:  # google.auth could not reach the token endpoint
        return CallFailure(
            "UNAVAILABLE", f"UNAVAILABLE: OAuth token endpoint unreachable: {_one_line(exc)}", True, False
        )

    status, call = _status_and_call(exc)
    if status is None:
        if isinstance(exc, TimeoutError):
            return CallFailure("DEADLINE_EXCEEDED", f"DEADLINE_EXCEEDED: {_describe_exception(exc)}", True, False)
        if isinstance(exc, ConnectionError):
            return CallFailure("UNAVAILABLE", f"UNAVAILABLE: {_describe_exception(exc)}", True, False)
        return CallFailure(type(exc).__name__, _describe_exception(exc), False, False)

    failure = _failure_pb(getattr(exc, "failure", None))
    metadata = _trailing_metadata(call)
    if failure is None:
        failure = failure_from_metadata(metadata, version)
    request_id = (failure.request_id if failure is not None else "") or getattr(exc, "request_id", None) or ""
    if not request_id:
        request_id = next((str(v) for k, v in metadata if k == "request-id"), "")

    retryable, rejected = status in RETRYABLE_STATUSES, status in REJECTED_STATUSES
    retry_delay: float | None = None
    parts: list[str] = []
    if failure is not None:
        for error in failure.errors:
            kind, code = error_code_name(error)
            parts.append(describe_error(error))
            if kind == "quota_error":
                retryable = code in _RETRYABLE_QUOTA
                rejected = rejected or not retryable
                delay = quota_retry_delay(error)
                if delay is not None and retryable:
                    retry_delay = delay if retry_delay is None else max(retry_delay, delay)
            elif kind in _REJECTED_KINDS:
                rejected, retryable = True, False
            elif kind in _RETRYABLE_KINDS:
                retryable = not rejected
    if not parts:
        details = _call_details(exc, call)
        if details:
            parts.append(details)
    detail = f"{status}: {'; '.join(parts)}" if parts else status
    if request_id:
        detail += f" [request_id={request_id}]"
    return CallFailure(status, _one_line(detail), retryable and not rejected, rejected, retry_delay)


def error_code_name(error: Any) -> tuple[str, str]:
    """The kind and code of a ``GoogleAdsError``: ``("quota_error", "RESOURCE_EXHAUSTED")``."""
    code = error.error_code
    kind = code.WhichOneof("error_code")
    if not kind:
        return "", ""
    value = getattr(code, kind)
    enum = code.DESCRIPTOR.fields_by_name[kind].enum_type
    found = enum.values_by_number.get(value) if enum is not None else None
    return kind, found.name if found is not None else str(value)


def describe_error(error: Any) -> str:
    """One ``GoogleAdsError`` as ``kind=CODE: message (at field.path) (quota details)``."""
    kind, code = error_code_name(error)
    text = f"{kind}={code}" if kind else "error"
    if error.message:
        text += f": {error.message}"
    path = ".".join(
        f"{e.field_name}[{e.index}]" if e.HasField("index") else e.field_name
        for e in error.location.field_path_elements
    )
    if path:
        text += f" (at {path})"
    if error.details.HasField("quota_error_details"):
        quota = error.details.quota_error_details
        scope = quota.DESCRIPTOR.fields_by_name["rate_scope"].enum_type.values_by_number.get(quota.rate_scope)
        bits = [f"rate_scope={scope.name if scope else quota.rate_scope}"]
        if quota.rate_name:
            bits.append(f"rate_name={quota.rate_name!r}")
        delay = quota_retry_delay(error)
        if delay is not None:
            bits.append(f"retry_delay={delay:g}s")
        text += f" ({', '.join(bits)})"
    return text


def quota_retry_delay(error: Any) -> float | None:
    """``details.quota_error_details.retry_delay`` in seconds, if the error carries one."""
    if not error.details.HasField("quota_error_details"):
        return None
    quota = error.details.quota_error_details
    if not quota.HasField("retry_delay"):
        return None
    return quota.retry_delay.seconds + quota.retry_delay.nanos / 1e9


def failure_class(version: str) -> Any:
    """The raw protobuf ``GoogleAdsFailure`` class of an API version."""
    module = importlib.import_module(f"google.ads.googleads.{version}.errors.types.errors")
    return module.GoogleAdsFailure.pb()


def failure_from_metadata(metadata: Iterable[tuple[str, Any]], version: str) -> Any:
    """The ``GoogleAdsFailure`` in a call's trailing metadata, or None."""
    for key, value in metadata:
        if key.endswith(FAILURE_KEY_SUFFIX) and isinstance(value, bytes):
            try:
                return failure_class(version).FromString(value)
            except Exception:  # undecodable or no such version: the status alone must do
                return None
    return None


def _failure_pb(failure: Any) -> Any:
    """A ``GoogleAdsFailure`` as a raw protobuf message (GoogleAdsException holds a proto-plus one)."""
    if failure is None:
        return None
    pb = getattr(type(failure), "pb", None)
    if callable(pb) and hasattr(failure, "_pb"):
        return pb(failure)
    return failure if hasattr(failure, "errors") and hasattr(failure, "DESCRIPTOR") else None


def _status_and_call(exc: BaseException) -> tuple[str | None, Any]:
    """The gRPC status name of an API error and the call object holding its metadata."""
    for holder in (getattr(exc, "error", None), exc):  # GoogleAdsException.error, else the error itself
        if holder is None:
            continue
        code = getattr(holder, "grpc_status_code", None)  # google.api_core exceptions
        if code is not None:
            return _code_name(code), getattr(holder, "response", None)
        code = getattr(holder, "code", None)
        if callable(code):
            try:
                name = _code_name(code())
            except Exception:
                name = None
            if name:
                return name, holder
    return None, None


def _code_name(code: Any) -> str | None:
    name = getattr(code, "name", None)
    return name.upper() if isinstance(name, str) else None


def _trailing_metadata(call: Any) -> list[tuple[str, Any]]:
    getter = getattr(call, "trailing_metadata", None)
    if not callable(getter):
        return []
    try:
        return [(str(k), v) for k, v in (getter() or ())]
    except Exception:
        return []


def _call_details(exc: BaseException, call: Any) -> str:
    details = getattr(call, "details", None)
    if callable(details):
        try:
            text = details()
        except Exception:
            text = None
        if text:
            return str(text)
    message = getattr(exc, "message", None)
    return str(message) if message else ""


def _describe_exception(exc: BaseException) -> str:
    text = _one_line(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _one_line(value: object) -> str:
    return " ".join(str(value).split())
