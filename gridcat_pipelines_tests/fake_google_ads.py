"""A Google Ads API stand-in on loopback, for the real ``GoogleAdsClient`` to talk to.

- :class:`FakeGoogleAdsServer`: a gRPC server speaking
  ``google.ads.googleads.<version>.services.GoogleAdsService/SearchStream`` over TLS on
  127.0.0.1 (generic method handlers; requests and responses are the library's raw protobuf
  classes). It checks the ``authorization`` bearer token and the ``developer-token`` header
  (``UNAUTHENTICATED`` with a ``GoogleAdsFailure`` otherwise) and plays, per
  ``(customer_id, query)``, a script of calls: each call is a list of steps, a response (a
  message or its serialized bytes) or an :class:`Abort` (a status, with a
  ``GoogleAdsFailure`` in the trailing metadata under
  ``google.ads.googleads.<version>.errors.googleadsfailure-bin`` as the API sends it).
  An abort after responses is a stream that breaks mid-way.
- :class:`FakeTokenServer`: an OAuth token endpoint (HTTP on loopback) for a service account
  whose JSON key file names it as ``token_uri``: the library's own service-account flow
  (``GOOGLE_ADS_JSON_KEY_FILE_PATH``) signs a JWT, this endpoint verifies it with the key's
  public half and hands out an access token. No request leaves the machine.
- :func:`shared_tls`: one self-signed certificate (for ``localhost`` and ``127.0.0.1``) per
  process. The client trusts it through ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH``, which gRPC
  reads once per process, at the first TLS handshake: set it (``monkeypatch.setenv``) before
  the first TLS channel connects, and keep using this one certificate.
- Builders: :func:`responses_for` (an Arrow table of a feed as ``SearchGoogleAdsStreamResponse``
  messages: ``None`` left unset, enum names as their numbers, dates as ``YYYY-MM-DD``),
  :func:`quota_failure`, :func:`failure`.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import ipaddress
import json
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import grpc
import pyarrow as pa

from gridcat_pipelines.feeds.models import FeedConfig
from gridcat_pipelines.sources.google_ads import DEFAULT_API_VERSION

DEVELOPER_TOKEN = "fake-developer-token-0123456789"
ACCESS_TOKEN = "ya29.fake-access-token-abcdef"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


# --------------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class Tls:
    cert_pem: bytes
    key_pem: bytes
    ca_path: str  # the certificate as a PEM file: what GRPC_DEFAULT_SSL_ROOTS_FILE_PATH points at


_TLS: Tls | None = None
_TLS_LOCK = threading.Lock()


def shared_tls() -> Tls:
    """This process's self-signed certificate for localhost / 127.0.0.1 (made on first use)."""
    global _TLS
    with _TLS_LOCK:
        if _TLS is None:
            from cryptography import x509
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.x509.oid import NameOID

            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
            now = dt.datetime.now(dt.UTC)
            san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName(san), critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256())
            )
            cert_pem = cert.public_bytes(serialization.Encoding.PEM)
            key_pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            folder = tempfile.mkdtemp(prefix="gridcat-fake-ads-tls-")
            atexit.register(shutil.rmtree, folder, True)
            ca_path = Path(folder, "ca.pem")
            ca_path.write_bytes(cert_pem)
            _TLS = Tls(cert_pem, key_pem, str(ca_path))
        return _TLS


# --------------------------------------------------------------------------- OAuth


class ServiceAccount:
    """A service account key (RSA) whose JSON key file points at a loopback token endpoint."""

    def __init__(self, email: str = "gridcat-test@gridcat-test.iam.gserviceaccount.com"):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.email = email
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.public_pem = (
            key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def write_key_file(self, path: Path, token_uri: str) -> str:
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": "gridcat-test",
                    "private_key_id": "k1",
                    "private_key": self.private_pem,
                    "client_email": self.email,
                    "client_id": "100000000000000000001",
                    "token_uri": token_uri,
                }
            )
        )
        return str(path)


class FakeTokenServer:
    """``POST /token`` with a JWT-bearer grant: verifies the assertion, answers an access token.

    ``reject = True`` answers ``400 invalid_grant`` (rejected credentials).
    """

    def __init__(self, account: ServiceAccount, access_token: str = ACCESS_TOKEN):
        self.account = account
        self.access_token = access_token
        self.reject = False
        self.grants: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                status, payload = outer._answer(form)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def token_uri(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/token"

    def _answer(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        from google.auth import jwt

        if self.reject:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type"}
        try:
            # google.auth signs for Google's token endpoint whatever token_uri says; so check that
            claims = jwt.decode(
                form.get("assertion", ""), certs=self.account.public_pem, audience=GOOGLE_TOKEN_AUDIENCE
            )
        except Exception as exc:  # a bad signature or audience
            return 400, {"error": "invalid_grant", "error_description": str(exc)}
        self.grants.append(claims)
        return 200, {"access_token": self.access_token, "expires_in": 3600, "token_type": "Bearer"}

    def __enter__(self) -> FakeTokenServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# --------------------------------------------------------------------------- gRPC


@dataclass
class Abort:
    """End the call with ``code`` (a ``grpc.StatusCode``), optionally with a GoogleAdsFailure."""

    code: grpc.StatusCode
    details: str = ""
    failure: Any = None  # a raw protobuf GoogleAdsFailure


@dataclass
class Call:
    """One SearchStream call the server received."""

    customer_id: str
    query: str
    metadata: dict[str, str] = field(default_factory=dict)


def _types(version: str):
    from gridcat_pipelines.sources.google_ads_rows import service_types

    return service_types(version)


def failure_class(version: str = DEFAULT_API_VERSION) -> Any:
    from gridcat_pipelines.sources.google_ads_errors import failure_class as cls

    return cls(version)


def failure(kind: str, code: str, message: str, version: str = DEFAULT_API_VERSION, **extra: Any) -> Any:
    """A GoogleAdsFailure with one error ``kind=code`` (e.g. ``authentication_error``)."""
    result = failure_class(version)()
    error = result.errors.add()
    enum = error.error_code.DESCRIPTOR.fields_by_name[kind].enum_type
    setattr(error.error_code, kind, enum.values_by_name[code].number)
    error.message = message
    result.request_id = extra.get("request_id", "req-" + uuid.uuid4().hex[:8])
    return result


def quota_failure(retry_seconds: float | None, version: str = DEFAULT_API_VERSION, **extra: Any) -> Any:
    """A QuotaError RESOURCE_EXHAUSTED failure carrying ``retry_delay`` (None: no delay)."""
    result = failure(
        "quota_error",
        extra.get("code", "RESOURCE_EXHAUSTED"),
        "Too many requests. Retry in the indicated time.",
        version,
        **extra,
    )
    details = result.errors[0].details.quota_error_details
    scope = details.DESCRIPTOR.fields_by_name["rate_scope"].enum_type.values_by_name["DEVELOPER"].number
    details.rate_scope = scope
    details.rate_name = "Number of operations for basic access"
    if retry_seconds is not None:
        details.retry_delay.seconds = int(retry_seconds)
        details.retry_delay.nanos = int(round((retry_seconds - int(retry_seconds)) * 1e9))
    return result


class FakeGoogleAdsServer:
    """The loopback TLS SearchStream server (see the module docstring)."""

    def __init__(
        self,
        tls: Tls,
        version: str = DEFAULT_API_VERSION,
        developer_token: str = DEVELOPER_TOKEN,
        access_token: str = ACCESS_TOKEN,
        workers: int = 4,
    ):
        self.version = version
        self.developer_token = developer_token
        self.access_token = access_token
        self.calls: list[Call] = []
        self._plans: dict[tuple[str, str], list[list[Any]]] = {}
        self._lock = threading.Lock()
        types = _types(version)
        request_class = types.SearchGoogleAdsStreamRequest.pb()
        self.response_class = types.SearchGoogleAdsStreamResponse.pb()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
        handler = grpc.unary_stream_rpc_method_handler(
            self._search_stream,
            request_deserializer=request_class.FromString,
            response_serializer=_serialize,
        )
        self._server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    f"google.ads.googleads.{version}.services.GoogleAdsService", {"SearchStream": handler}
                )
            ]
        )
        credentials = grpc.ssl_server_credentials([(tls.key_pem, tls.cert_pem)])
        self.port = self._server.add_secure_port("127.0.0.1:0", credentials)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def plan(self, customer_id: str, query: str, *calls: Iterable[Any]) -> None:
        """What the next calls for ``(customer_id, query)`` get, in order (the last one repeats)."""
        with self._lock:
            self._plans[(customer_id, query)] = [list(c) for c in calls]

    def reset(self) -> None:
        with self._lock:
            self._plans.clear()
            self.calls.clear()

    def _next_call(self, customer_id: str, query: str) -> list[Any] | None:
        with self._lock:
            plan = self._plans.get((customer_id, query))
            if not plan:
                return None
            return plan.pop(0) if len(plan) > 1 else plan[0]

    def _search_stream(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        with self._lock:
            self.calls.append(Call(request.customer_id, request.query, metadata))
        request_id = "req-" + uuid.uuid4().hex[:12]
        if metadata.get("authorization") != f"Bearer {self.access_token}":
            self._abort(
                context,
                Abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "Request had invalid authentication credentials.",
                    failure("authentication_error", "OAUTH_TOKEN_INVALID", "OAuth token invalid.", self.version),
                ),
            )
        if metadata.get("developer-token") != self.developer_token:
            self._abort(
                context,
                Abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "Request had invalid authentication credentials.",
                    failure(
                        "authentication_error", "DEVELOPER_TOKEN_INVALID", "Developer token invalid.", self.version
                    ),
                ),
            )
        steps = self._next_call(request.customer_id, request.query)
        if steps is None:
            self._abort(
                context,
                Abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "Request contains an invalid argument.",
                    failure("query_error", "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE", "no such report here", self.version),
                ),
            )
        context.send_initial_metadata([("request-id", request_id)])
        for step in steps:
            if isinstance(step, Abort):
                self._abort(context, step)
            yield step

    def _abort(self, context: grpc.ServicerContext, abort: Abort) -> None:
        trailing = []
        if abort.failure is not None:
            key = f"google.ads.googleads.{self.version}.errors.googleadsfailure-bin"
            trailing.append((key, abort.failure.SerializeToString()))
            trailing.append(("request-id", abort.failure.request_id))
        context.set_trailing_metadata(trailing)
        context.abort(abort.code, abort.details)

    def __enter__(self) -> FakeGoogleAdsServer:
        self._server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop(grace=None)


@dataclass
class LoopbackAds:
    """A running fake API and token endpoint, and the settings that point the library at them."""

    server: FakeGoogleAdsServer
    token: FakeTokenServer
    key_file: str

    def settings(self, **overrides: str) -> dict[str, str]:
        """The google-ads settings (library keys) of a service account talking to the fake."""
        values = {
            "developer_token": self.server.developer_token,
            "json_key_file_path": self.key_file,
            "endpoint": self.server.endpoint,
        }
        values.update(overrides)
        return values

    def reset(self) -> None:
        self.server.reset()
        self.token.reject = False
        self.token.grants.clear()


@contextlib.contextmanager
def loopback_google_ads(folder: Path, version: str = DEFAULT_API_VERSION) -> Iterator[LoopbackAds]:
    """Start the fake API and token endpoint; gRPC trusts :func:`shared_tls` meanwhile.

    ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` is set for the duration (gRPC reads it at the first
    TLS handshake of the process and keeps it: every test uses the same certificate).
    """
    tls = shared_tls()
    account = ServiceAccount()
    with contextlib.ExitStack() as stack:
        patch = stack.enter_context(_monkeypatch())
        patch.setenv("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", tls.ca_path)
        token = stack.enter_context(FakeTokenServer(account))
        server = stack.enter_context(FakeGoogleAdsServer(tls, version=version))
        key_file = account.write_key_file(Path(folder) / "service-account.json", token.token_uri)
        yield LoopbackAds(server, token, key_file)


def _monkeypatch():
    import pytest

    return pytest.MonkeyPatch.context()


def _serialize(message: Any) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()


# --------------------------------------------------------------------------- rows


def responses_for(
    feed: FeedConfig, table: pa.Table, version: str = DEFAULT_API_VERSION, rows_per_response: int = 10_000
) -> list[Any]:
    """``table`` (the feed's columns) as SearchStream responses of ``GoogleAdsRow`` messages."""
    types = _types(version)
    response_class = types.SearchGoogleAdsStreamResponse.pb()
    row_desc = response_class.DESCRIPTOR.fields_by_name["results"].message_type
    setters = [(col.name, _setter(row_desc, col.field)) for col in feed.columns]
    responses = []
    records = table.to_pylist()
    for start in range(0, max(len(records), 1), rows_per_response):
        response = response_class()
        for record in records[start : start + rows_per_response]:
            row = response.results.add()
            for name, setter in setters:
                value = record[name]
                if value is not None:
                    setter(row, value)
        responses.append(response)
    return responses


def _setter(row_desc: Any, gaql_path: str):
    """A function setting ``gaql_path`` on a GoogleAdsRow (enum names, dates, ``type`` -> ``type_``)."""
    from google.protobuf.descriptor import FieldDescriptor as FD

    names, desc, field = [], row_desc, None
    for step in gaql_path.split("."):
        field = desc.fields_by_name.get(step) or desc.fields_by_name[step + "_"]
        names.append(field.name)
        desc = field.message_type
    assert field is not None
    enum = field.enum_type if field.type == FD.TYPE_ENUM else None

    def set_value(row: Any, value: Any) -> None:
        target = row
        for name in names[:-1]:
            target = getattr(target, name)
        if enum is not None:
            value = enum.values_by_name[value].number
        elif isinstance(value, date):
            value = value.isoformat()
        setattr(target, names[-1], value)

    return set_value
