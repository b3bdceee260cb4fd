"""The real source: the Google Ads API's ``GoogleAdsService.SearchStream`` through the
``google-ads`` package (an optional dependency: ``pip install 'gridcat[google-ads]'``).

Settings are the library's own keys (``developer_token``, ``client_id``, ``client_secret``,
``refresh_token``, ``json_key_file_path``, ``impersonated_email``,
``use_application_default_credentials``, ``login_customer_id``, ``endpoint``, ...), given as
values (:func:`google_ads_settings_from` maps the ``GOOGLE_ADS_*`` variables to them) and/or a
``google-ads.yaml``: the file first, the settings over it, ``use_proto_plus`` always False
(raw protobuf messages, as Google recommends for large reports). The API version is pinned
(:data:`DEFAULT_API_VERSION` unless the caller passes another).

The client is built with ``GoogleAdsClient.load_from_dict`` on the first :meth:`fetch`
(constructing the source needs neither the package nor the network). Building it refreshes
the OAuth token: the token endpoint rejecting the credentials is a :class:`SourceConfigError`,
as are missing credentials (one line naming the variables to set) and an
``UNAUTHENTICATED`` / ``PERMISSION_DENIED`` answer; none of them is retried, and the source
remembers the rejection so later fetches fail at once instead of asking again.

:meth:`fetch` opens the stream and waits for its first response before it returns, so
everything that can go wrong before the first batch happens before the caller creates a raw
run, and is retried there, in this one place:

- a quota error (``RESOURCE_EXHAUSTED`` / ``QuotaError``) waits the ``retry_delay`` the error
  carries (``quota_error_details.retry_delay``), as long as the total wait stays within
  ``max_quota_wait_seconds``; a longer delay (a daily quota) fails at once;
- transient errors (``UNAVAILABLE``, ``DEADLINE_EXCEEDED``, ``INTERNAL``, ``ABORTED``, the
  token endpoint unreachable, a quota error without a delay) back off exponentially;
- after ``max_attempts`` it gives up with a plain :class:`SourceError`: the retries were
  made here, so the Dagster retry policy (which retries ``TransientSourceError``) does not
  multiply them.

The returned iterator yields one record batch per API response (split at ``batch_rows``).
A stream that breaks after that raises :class:`TransientSourceError` when the error is
transient (after waiting a quota error's delay): the raw run being written stays incomplete
(never validated) and the asset's retry pulls a new run. Every message names the feed,
customer and day, the gRPC status and each ``GoogleAdsError`` of the ``GoogleAdsFailure``
(kind, code, message, field path, quota details) and the request id; secret values (tokens,
client secret) are masked in every message and never appear in ``repr``.

The stream is called on the library's own channel (``service.transport.grpc_channel``,
with its metadata, logging and exception interceptors and its OAuth credentials) with a
response type cut down to the feed's fields; see :mod:`.google_ads_rows` for why and how.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from itertools import count
from typing import Any

import pyarrow as pa
import yaml

from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.feeds.models import CustomerConfig, FeedConfig
from gridcat_pipelines.sources.base import SourceError, TransientSourceError
from gridcat_pipelines.sources.google_ads_errors import CallFailure, classify
from gridcat_pipelines.state.keys import normalize_customer_id

DEFAULT_API_VERSION = "v26"  # the newest version google-ads 34.0.0 serves (v23-v26): the longest until sunset
INSTALL_HINT = "pip install 'gridcat[google-ads]'"
ENV_PREFIX = "GOOGLE_ADS_"
CONFIGURATION_FILE_VARIABLE = "GOOGLE_ADS_CONFIGURATION_FILE_PATH"
# The google-ads library's configuration keys, each read from GOOGLE_ADS_<KEY> (as
# google.ads.googleads.config does; use_proto_plus is not among them: it is always False here,
# and configuration_file_path is the separate `configuration_file`).
SETTING_KEYS = (
    "developer_token",
    "client_id",
    "client_secret",
    "refresh_token",
    "json_key_file_path",
    "impersonated_email",
    "use_application_default_credentials",
    "login_customer_id",
    "linked_customer_id",
    "endpoint",
    "http_proxy",
    "logging",
    "ads_assistant",
    "path_to_private_key_file",  # deprecated spellings the library still accepts
    "delegated_account",
)
SECRET_KEYS = frozenset({"developer_token", "client_secret", "refresh_token"})
CREDENTIALS_HINT = (
    "set GOOGLE_ADS_DEVELOPER_TOKEN and either GOOGLE_ADS_REFRESH_TOKEN+GOOGLE_ADS_CLIENT_ID+"
    "GOOGLE_ADS_CLIENT_SECRET or GOOGLE_ADS_JSON_KEY_FILE_PATH (or GOOGLE_ADS_USE_APPLICATION_DEFAULT_CREDENTIALS), "
    "or GOOGLE_ADS_CONFIGURATION_FILE_PATH (a google-ads.yaml with those keys)"
)
_TRUE = frozenset({"y", "yes", "t", "true", "on", "1"})

log = logging.getLogger(__name__)


class SourceConfigError(SourceError):
    """Missing, unusable or rejected Google Ads credentials or settings: retrying cannot help.

    ``code`` is the status a caller may report: ``FAILED_PRECONDITION`` (missing or unusable
    settings), ``UNAUTHENTICATED`` or ``PERMISSION_DENIED`` (rejected by Google).
    """

    def __init__(self, message: str, code: str = "FAILED_PRECONDITION"):
        super().__init__(message)
        self.code = code


def google_ads_settings_from(env: Mapping[str, str]) -> tuple[dict[str, str], str | None]:
    """The library settings and the ``google-ads.yaml`` path named by ``GOOGLE_ADS_*`` variables.

    A pure function of ``env`` (the caller decides where the variables come from): each
    :data:`SETTING_KEYS` key that is set and not empty, and ``GOOGLE_ADS_CONFIGURATION_FILE_PATH``.
    """
    settings = {key: env[ENV_PREFIX + key.upper()] for key in SETTING_KEYS if env.get(ENV_PREFIX + key.upper())}
    return settings, env.get(CONFIGURATION_FILE_VARIABLE) or None


class GoogleAdsApiSource:
    """Pulls reports from the Google Ads API (implements ``AdsSource``); see the module docstring.

    ``client`` replaces the ``GoogleAdsClient`` (tests); ``sleep`` is how waits happen.
    Tuning: ``max_attempts`` (calls before giving up, per fetch), ``backoff_seconds`` (first
    backoff, doubling up to ``max_backoff_seconds``, +/- ``jitter`` of itself),
    ``max_quota_wait_seconds`` (total quota wait per fetch), ``timeout_seconds`` (deadline of
    one stream), ``batch_rows`` (most rows per record batch).
    """

    name = "google_ads_api"

    def __init__(
        self,
        *,
        settings: Mapping[str, Any] | None = None,
        configuration_file: str | None = None,
        version: str = DEFAULT_API_VERSION,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 5,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
        jitter: float = 0.2,
        max_quota_wait_seconds: float = 600.0,
        timeout_seconds: float | None = 3600.0,
        batch_rows: int = 10_000,
    ):
        if max_attempts < 1:
            raise invalid_argument(f"max_attempts must be at least 1, got {max_attempts!r}")
        if batch_rows < 1:
            raise invalid_argument(f"batch_rows must be at least 1, got {batch_rows!r}")
        if not 0 <= jitter < 1:
            raise invalid_argument(f"jitter must be from 0 to below 1, got {jitter!r}")
        if not isinstance(version, str) or not version.startswith("v"):
            raise invalid_argument(f"version must look like 'v26', got {version!r}")
        self._settings = {k: v for k, v in dict(settings or {}).items() if v not in (None, "")}
        self.configuration_file = configuration_file or None
        self.version = version
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.jitter = jitter
        self.max_quota_wait_seconds = max_quota_wait_seconds
        self.timeout_seconds = timeout_seconds
        self.batch_rows = batch_rows
        self._client = client
        self._config: dict[str, Any] | None = None
        self._secrets: list[str] = self._secret_values(self._settings)
        self._rejected: SourceConfigError | None = None
        self._service: Any = None
        self._readers: dict[Any, Any] = {}
        self._callables: dict[Any, Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # names only, never values
        keys = sorted(self._settings)
        return (
            f"GoogleAdsApiSource(version={self.version!r}, settings={keys!r}, "
            f"configuration_file={self.configuration_file!r})"
        )

    # ------------------------------------------------------------------ configuration

    @property
    def login_customer_id(self) -> str | None:
        """The manager account the calls go through (``login_customer_id``), digits only."""
        value = self._settings.get("login_customer_id")
        if value is None and self._config is not None:
            value = self._config.get("login_customer_id")
        return _digits(value) if value not in (None, "") else None

    def config(self) -> dict[str, Any]:
        """The merged library configuration (file, then settings; ``use_proto_plus`` False).

        :class:`SourceConfigError` if the file cannot be read or credentials are missing.
        """
        if self._config is None:
            merged: dict[str, Any] = {}
            if self.configuration_file:
                merged.update(self._read_configuration_file())
            merged.update(self._settings)
            merged = {k: v for k, v in merged.items() if v not in (None, "")}
            merged["use_proto_plus"] = False
            for key in ("login_customer_id", "linked_customer_id"):
                if key in merged:
                    merged[key] = _digits(merged[key])
            self._secrets = self._secret_values(merged)
            missing = _missing_credentials(merged)
            if missing:
                where = f" (neither set nor in {self.configuration_file})" if self.configuration_file else ""
                raise SourceConfigError(f"Google Ads credentials missing: {missing}{where}: {CREDENTIALS_HINT}")
            self._config = merged
        return dict(self._config)

    def _read_configuration_file(self) -> dict[str, Any]:
        path = self.configuration_file
        try:
            with open(path, encoding="utf-8") as handle:
                values = yaml.safe_load(handle) or {}
        except OSError as exc:
            raise SourceConfigError(
                f"GOOGLE_ADS_CONFIGURATION_FILE_PATH: cannot read {path}: {exc.strerror or exc}"
            ) from None
        except yaml.YAMLError as exc:
            raise SourceConfigError(
                f"GOOGLE_ADS_CONFIGURATION_FILE_PATH: {path} is not valid YAML: {' '.join(str(exc).split())}"
            ) from None
        if not isinstance(values, dict):
            raise SourceConfigError(f"GOOGLE_ADS_CONFIGURATION_FILE_PATH: {path} is not a YAML mapping of settings")
        return values

    @staticmethod
    def _secret_values(values: Mapping[str, Any]) -> list[str]:
        found = {str(v) for k, v in values.items() if k in SECRET_KEYS and v and len(str(v)) >= 4}
        return sorted(found, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` with every secret value of the configuration masked."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    # ------------------------------------------------------------------ the client

    @property
    def client(self) -> Any:
        """The ``GoogleAdsClient``, built on first use (a token refresh: a network call)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._build_client()
        return self._client

    def _build_client(self) -> Any:
        config = self.config()
        try:
            from google.ads.googleads.client import GoogleAdsClient
        except ImportError:
            raise SourceConfigError(f"the google-ads package is not installed: {INSTALL_HINT}") from None
        try:
            return GoogleAdsClient.load_from_dict(dict(config), version=self.version)
        except FileNotFoundError as exc:
            raise SourceConfigError(
                f"Google Ads credentials: file not found: {exc.filename} "
                "(GOOGLE_ADS_JSON_KEY_FILE_PATH or json_key_file_path in the configuration file)"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:  # the library's own config checks
            text = self.redact(" ".join(str(exc).split()))
            raise SourceConfigError(f"Google Ads settings rejected by the google-ads library: {text}") from None

    def _service_client(self) -> Any:
        if self._service is None:
            self._service = self.client.get_service("GoogleAdsService", version=self.version)
        return self._service

    # ------------------------------------------------------------------ fetch

    def fetch(
        self, feed: FeedConfig, customer: CustomerConfig, day: date, *, attempt: int = 0
    ) -> Iterator[pa.RecordBatch]:
        """Open the report's stream (retrying as described) and return its record batches.

        The batches have ``feed.arrow_schema()``; an empty report yields none.
        """
        customer_id = normalize_customer_id(customer.customer_id)
        label = f"{feed.name} for {customer_id} on {day.isoformat()}"
        stream, first, reader = self._open(
            customer_id, feed.query_for(day), label, lambda: self._reader(feed), attempt=attempt
        )
        return self._batches(reader, stream, first, label)

    def search(self, customer_id: str, query: str, *, label: str | None = None) -> Iterator[Any]:
        """Rows (raw protobuf ``GoogleAdsRow``) of any GAQL query, with :meth:`fetch`'s retries."""
        customer_id = normalize_customer_id(customer_id)
        label = label or f"query for {customer_id}"
        stream, first, _ = self._open(customer_id, query, label, lambda: None)
        return self._rows(stream, first, label)

    def _reader(self, feed: FeedConfig) -> Any:
        key = (feed.name, feed.columns)
        reader = self._readers.get(key)
        if reader is None:
            from gridcat_pipelines.sources.google_ads_rows import FeedReader

            try:
                reader = FeedReader(feed, self.version)
            except ImportError:
                raise SourceConfigError(
                    f"Google Ads API version {self.version!r} is not served by the installed google-ads package "
                    f"(or the package is missing: {INSTALL_HINT})"
                ) from None
            self._readers[key] = reader
        return reader

    def _open(
        self, customer_id: str, query: str, label: str, make_reader: Callable[[], Any], *, attempt: int = 0
    ) -> tuple[Iterator[Any], Any, Any]:
        """Call SearchStream and wait for its first response, retrying quota and transient errors."""
        if self._rejected is not None:
            raise self._rejected
        quota_waited = 0.0
        for tries in count(1):
            try:
                self._service_client()  # builds the client on first use (config checks, token refresh)
                reader = make_reader()
                stream = self._call(customer_id, query, reader)
                first = next(stream, None)
                return stream, first, reader
            except SourceConfigError as exc:
                if exc.code != "FAILED_PRECONDITION":
                    self._rejected = exc
                raise
            except SourceError:
                raise
            except Exception as exc:
                failure = self._classify(exc)
                if failure.rejected:
                    self._rejected = SourceConfigError(self._rejection_message(label, failure), failure.status)
                    raise self._rejected from None
                if not failure.retryable:
                    raise SourceError(f"{label}: {failure.detail}") from exc
                if tries >= self.max_attempts:
                    raise SourceError(
                        f"{label}: gave up after {tries} attempts ({failure.detail}); not retried further"
                    ) from exc
                if failure.quota:
                    delay = failure.retry_delay or 0.0
                    if quota_waited + delay > self.max_quota_wait_seconds:
                        raise SourceError(self._quota_too_long(label, failure, quota_waited)) from exc
                    quota_waited += delay
                else:
                    delay = self._backoff(tries)
                log.warning(
                    "%s: %s; retrying in %.1f s (attempt %d of %d, pull %d)",
                    label,
                    failure.detail,
                    delay,
                    tries + 1,
                    self.max_attempts,
                    attempt + 1,
                )
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(self, customer_id: str, query: str, reader: Any) -> Iterator[Any]:
        """Start SearchStream on the client's channel; responses parse into the reader's type."""
        from gridcat_pipelines.sources.google_ads_rows import stream_classes

        request_class, full_response = stream_classes(self.version)
        response_class = reader.response_class if reader is not None else full_response
        method = self._callables.get(response_class)
        if method is None:
            channel = self._service_client().transport.grpc_channel
            method = channel.unary_stream(
                f"/google.ads.googleads.{self.version}.services.GoogleAdsService/SearchStream",
                request_serializer=request_class.SerializeToString,
                response_deserializer=response_class.FromString,
            )
            self._callables[response_class] = method
        request = request_class(customer_id=customer_id, query=query)
        metadata = [("x-goog-request-params", f"customer_id={customer_id}"), _client_info_header()]
        return method(request, timeout=self.timeout_seconds, metadata=metadata)

    def _batches(self, reader: Any, stream: Iterator[Any], first: Any, label: str) -> Iterator[pa.RecordBatch]:
        rows = 0
        try:
            response = first
            while response is not None:
                if len(response.results):
                    batch = reader.batch(response.results)
                    for offset in range(0, batch.num_rows, self.batch_rows):
                        part = batch.slice(offset, self.batch_rows)
                        rows += part.num_rows
                        yield part
                response = next(stream, None)
        except SourceError:
            raise
        except Exception as exc:
            raise self._broken(label, exc, rows) from exc
        finally:
            _cancel(stream)

    def _rows(self, stream: Iterator[Any], first: Any, label: str) -> Iterator[Any]:
        rows = 0
        try:
            response = first
            while response is not None:
                for row in response.results:
                    rows += 1
                    yield row
                response = next(stream, None)
        except Exception as exc:
            raise self._broken(label, exc, rows) from exc
        finally:
            _cancel(stream)

    def _broken(self, label: str, exc: Exception, rows: int) -> SourceError:
        """The error for a stream that failed after its first response."""
        failure = self._classify(exc)
        where = f"{label}: the stream broke after {rows} rows ({failure.detail})"
        if failure.rejected:
            self._rejected = SourceConfigError(self._rejection_message(label, failure), failure.status)
            return self._rejected
        if not failure.retryable:
            return SourceError(where)
        if failure.quota:
            delay = failure.retry_delay or 0.0
            if delay > self.max_quota_wait_seconds:
                return SourceError(f"{where}; the quota delay is longer than max_quota_wait_seconds")
            self.sleep(delay)  # so that the retry that follows does not hit the quota again at once
        return TransientSourceError(f"{where}; this run stays incomplete, retry with a new run")

    # ------------------------------------------------------------------ helpers

    def _classify(self, exc: BaseException) -> CallFailure:
        failure = classify(exc, self.version)
        return CallFailure(
            failure.status,
            self.redact(failure.detail),
            failure.retryable,
            failure.rejected,
            failure.retry_delay,
        )

    def _rejection_message(self, label: str, failure: CallFailure) -> str:
        return (
            f"Google Ads rejected the credentials or access ({failure.detail}) on {label}: check "
            "GOOGLE_ADS_DEVELOPER_TOKEN, the OAuth credentials (GOOGLE_ADS_REFRESH_TOKEN+CLIENT_ID+CLIENT_SECRET "
            "or GOOGLE_ADS_JSON_KEY_FILE_PATH) and GOOGLE_ADS_LOGIN_CUSTOMER_ID (the manager account); not retried"
        )

    def _quota_too_long(self, label: str, failure: CallFailure, waited: float) -> str:
        left = max(0.0, self.max_quota_wait_seconds - waited)
        return (
            f"{label}: quota exhausted and the API asks to wait {failure.retry_delay:g} s, more than the "
            f"{left:g} s left of max_quota_wait_seconds ({failure.detail}); not retried"
        )

    def _backoff(self, tries: int) -> float:
        delay = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (tries - 1))
        if self.jitter:
            delay *= 1 + self.jitter * (2 * random.random() - 1)
        return delay


def _missing_credentials(config: Mapping[str, Any]) -> str:
    """What is missing for the library to authenticate, or ``""``."""
    gaps = []
    if not config.get("developer_token"):
        gaps.append("no developer token")
    oauth = all(config.get(k) for k in ("client_id", "client_secret", "refresh_token"))
    service_account = bool(config.get("json_key_file_path") or config.get("path_to_private_key_file"))
    adc = str(config.get("use_application_default_credentials", "")).strip().lower() in _TRUE
    if not (oauth or service_account or adc):
        partial = [k for k in ("client_id", "client_secret", "refresh_token") if config.get(k)]
        absent = [
            f"GOOGLE_ADS_{k.upper()}" for k in ("client_id", "client_secret", "refresh_token") if k not in partial
        ]
        gaps.append(
            f"OAuth client missing {'+'.join(absent)}" if partial else "no OAuth or service account credentials"
        )
    return "; ".join(gaps)


def _digits(value: Any) -> str:
    """A customer id as the library wants it: ten digits, no hyphens."""
    try:
        return normalize_customer_id(value)
    except Exception:
        return str(value)


def _cancel(stream: Any) -> None:
    cancel = getattr(stream, "cancel", None)
    if callable(cancel):
        try:
            cancel()
        except Exception:  # pragma: no cover - a finished call may refuse
            pass


_CLIENT_INFO: tuple[str, str] | None = None


def _client_info_header() -> tuple[str, str]:
    """The ``x-goog-api-client`` header the generated clients send (the library version)."""
    global _CLIENT_INFO
    if _CLIENT_INFO is None:
        from importlib import metadata

        from google.api_core.gapic_v1.client_info import ClientInfo

        try:
            version = metadata.version("google-ads")
        except metadata.PackageNotFoundError:  # pragma: no cover
            version = None
        _CLIENT_INFO = ClientInfo(client_library_version=version).to_grpc_metadata()
    return _CLIENT_INFO
