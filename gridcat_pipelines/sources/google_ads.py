"""The real source: Google Ads API ``GoogleAdsService.SearchStream`` via the ``google-ads``
package, an optional dependency (``pip install 'gridcat[google-ads]'``).

The client is built on the first ``fetch`` (so importing this module and constructing the
source never needs the package nor the network); tests inject a duck-typed ``client`` whose
``get_service("GoogleAdsService").search_stream(customer_id=..., query=...)`` returns an
iterable of response batches, each with ``.results`` rows.

Each row is mapped to the feed's columns by walking the GAQL field path on the row object
(``campaign.status`` -> ``row.campaign.status``); enums become their ``.name``,
``segments.date`` strings become dates. Quota (``RESOURCE_EXHAUSTED``) and transient
(``UNAVAILABLE``, ``DEADLINE_EXCEEDED``, ``INTERNAL``) errors are retried with exponential
backoff as long as no batch has been handed out; after that the error is raised
(``TransientSourceError`` / ``SourceError``), the sink's run stays incomplete and a later
pull starts over.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Any

import pyarrow as pa

from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.feeds.models import ColumnSpec, CustomerConfig, FeedConfig
from gridcat_pipelines.sources.base import SourceError, TransientSourceError
from gridcat_pipelines.state.keys import normalize_customer_id

RETRYABLE_CODES = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL"})
INSTALL_HINT = "pip install 'gridcat[google-ads]'"


class GoogleAdsApiSource:
    """Pulls reports from the Google Ads API (implements ``AdsSource``)."""

    name = "google_ads_api"

    def __init__(
        self,
        developer_token: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        login_customer_id: str | None = None,
        client: Any = None,
        max_attempts: int = 5,
        backoff_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        batch_rows: int = 10_000,
    ):
        if max_attempts < 1:
            raise invalid_argument(f"max_attempts must be at least 1, got {max_attempts!r}")
        if batch_rows < 1:
            raise invalid_argument(f"batch_rows must be at least 1, got {batch_rows!r}")
        self._credentials = {
            "developer_token": developer_token,
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        }
        self.login_customer_id = normalize_customer_id(login_customer_id) if login_customer_id else None
        self._client = client
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep
        self.batch_rows = batch_rows

    def __repr__(self) -> str:  # never print the credentials
        return f"GoogleAdsApiSource(login_customer_id={self.login_customer_id!r})"

    @property
    def client(self) -> Any:
        """The ``GoogleAdsClient``, built from the credentials on first use.

        Building it refreshes the OAuth token (a network call), so ``fetch`` does it inside
        its retry loop; a token endpoint outage is retried, a rejected token is not.
        """
        if self._client is None:
            self._client = self._build_client()
        return self._client

    def _build_client(self) -> Any:
        try:
            from google.ads.googleads.client import GoogleAdsClient
        except ImportError as exc:
            raise SourceError(f"the google-ads package is not installed: {INSTALL_HINT}") from exc
        config: dict[str, Any] = {**self._credentials, "use_proto_plus": True}
        if self.login_customer_id:
            config["login_customer_id"] = self.login_customer_id
        return GoogleAdsClient.load_from_dict(config)

    def fetch(
        self, feed: FeedConfig, customer: CustomerConfig, day: date, *, attempt: int = 0
    ) -> Iterator[pa.RecordBatch]:
        """Stream the report as record batches with ``feed.arrow_schema()``.

        Retries quota/transient errors before the first batch; see the module docstring.
        """
        customer_id = normalize_customer_id(customer.customer_id)
        query = feed.query_for(day)
        label = f"{feed.name} for {customer_id} on {day.isoformat()}"
        tries = 0
        while True:
            tries += 1
            yielded = False
            try:
                service = self.client.get_service("GoogleAdsService")
                for response in service.search_stream(customer_id=customer_id, query=query):
                    for batch in rows_to_batches(feed, response.results, self.batch_rows):
                        yielded = True
                        yield batch
                return
            except SourceError:
                raise
            except Exception as exc:
                code = error_code(exc)
                retryable = code in RETRYABLE_CODES
                reason = f"{code or type(exc).__name__}: {exc}"
                if yielded:
                    error = TransientSourceError if retryable else SourceError
                    raise error(f"pull of {label} failed mid-stream ({reason})") from exc
                if not retryable:
                    raise SourceError(f"pull of {label} failed ({reason})") from exc
                if tries >= self.max_attempts:
                    raise TransientSourceError(
                        f"pull of {label} still failing after {tries} attempts ({reason})"
                    ) from exc
                self.sleep(self.backoff_seconds * 2 ** (tries - 1))


def error_code(exc: BaseException) -> str | None:
    """The gRPC status name of a Google Ads / gRPC / api-core error, if it carries one.

    ``GoogleAdsException`` (``.error`` is the gRPC call; a quota failure also shows in
    ``.failure.errors[].error_code.quota_error``), ``grpc.RpcError`` (``.code()``),
    ``google.api_core`` exceptions (``.grpc_status_code``); ``google.auth`` transport errors
    and connection resets count as ``UNAVAILABLE``, timeouts as ``DEADLINE_EXCEEDED``.
    """
    for errors in _failure_errors(exc):
        quota = getattr(getattr(errors, "error_code", None), "quota_error", None)
        if quota:  # a set enum is truthy (0 = UNSPECIFIED)
            return "RESOURCE_EXHAUSTED"
    for holder in (getattr(exc, "error", None), getattr(exc, "call", None), exc):
        code = getattr(holder, "code", None)
        if callable(code):
            try:
                code = code()
            except Exception:
                code = None
        code = getattr(holder, "grpc_status_code", None) or code
        name = getattr(code, "name", None)
        if isinstance(name, str):
            return name.upper()
    if any(cls.__name__ == "TransportError" for cls in type(exc).__mro__):
        return "UNAVAILABLE"  # google.auth could not reach the token endpoint
    if isinstance(exc, TimeoutError):
        return "DEADLINE_EXCEEDED"
    if isinstance(exc, ConnectionError):
        return "UNAVAILABLE"
    return None


def _failure_errors(exc: BaseException) -> Iterable[Any]:
    failure = getattr(exc, "failure", None)
    try:
        return list(getattr(failure, "errors", None) or ())
    except TypeError:
        return ()


def rows_to_batches(feed: FeedConfig, rows: Iterable[Any], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Map API rows to record batches of at most ``batch_rows`` rows with the feed's schema."""
    schema = feed.arrow_schema()
    paths = [(col, col.field.split(".")) for col in feed.columns]
    values: list[list[Any]] = [[] for _ in paths]
    count = 0
    for row in rows:
        for i, (col, path) in enumerate(paths):
            values[i].append(convert_value(col, read_field(row, path, col.nullable)))
        count += 1
        if count == batch_rows:
            yield _batch(schema, values)
            values, count = [[] for _ in paths], 0
    if count:
        yield _batch(schema, values)


def _batch(schema: pa.Schema, values: list[list[Any]]) -> pa.RecordBatch:
    try:
        arrays = [pa.array(v, type=f.type) for v, f in zip(values, schema)]
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise SourceError(f"API rows do not fit the feed's Arrow schema: {exc}") from exc
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def read_field(row: Any, path: list[str], nullable: bool) -> Any:
    """The value at ``path`` on ``row`` (None if any step is missing).

    On proto-plus messages a nullable column reads an unset field (``field not in msg``:
    absent optional, empty string, zero, ``UNSPECIFIED``) as null, as the API means it.
    """
    obj = row
    for step in path:
        if obj is None:
            return None
        parent = obj
        obj = _attr(parent, step)
        if nullable and step == path[-1] and hasattr(parent, "_pb"):
            try:
                if step not in parent:  # the protobuf field name (``type``, not ``type_``)
                    return None
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
    return obj


def _attr(obj: Any, name: str) -> Any:
    for candidate in (name, name + "_"):  # proto-plus suffixes names that clash: type_
        try:
            return getattr(obj, candidate)
        except AttributeError:
            continue
    return None


def convert_value(col: ColumnSpec, value: Any) -> Any:
    """One API value as the Python value of the column's Arrow type (enums -> ``.name``)."""
    if value is None:
        return None
    kind = col.type
    if kind == "string":
        if isinstance(value, str):
            return value
        name = getattr(value, "name", None)
        return name if isinstance(name, str) else str(value)
    if kind == "date32":
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError as exc:
            raise SourceError(f"{col.field}: {value!r} is not a YYYY-MM-DD date") from exc
    try:
        if kind == "int64":
            return int(value)
        if kind == "double":
            return float(value)
        if kind == "bool":
            return bool(value)
    except (TypeError, ValueError) as exc:
        raise SourceError(f"{col.field}: cannot read {value!r} as {kind}") from exc
    return value
