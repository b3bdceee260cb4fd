"""The ASGI application: routing, auth, body limits, idempotency, Connect errors.

Order of checks for a request: path (404) → method (405, with ``Allow``) → token (401/403) →
``Content-Length`` over 1 MiB (413, decided before the body is read) → content type of an RPC
(415) → body (read with the same limit) → JSON and schema (400) → ``Idempotency-Key`` (replay,
422 or 409) → the service, in a worker thread (the services are synchronous). Every error is
Connect's ``{"code", "message", "details"}``; an unexpected exception is logged and answered
500 ``internal`` without its text.

Every request is one INFO line on the ``gridcat.api.access`` logger: method, path, status and
duration in ms (also as the record's ``method``, ``path``, ``status`` and ``duration_ms``
attributes, for the JSON log format). Headers (the Authorization token), the query string and
bodies are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl, quote

from sqlalchemy.exc import OperationalError

from gridcat_pipelines.api import openapi
from gridcat_pipelines.api.auth import Principal, TokenAuth
from gridcat_pipelines.api.calls import Call
from gridcat_pipelines.api.errors import HttpError, connect_error
from gridcat_pipelines.api.idempotency import StoredResponse, request_hash
from gridcat_pipelines.api.messages import check_string, read_message
from gridcat_pipelines.api.route import RPC_PREFIX, Route
from gridcat_pipelines.api.routes import Router
from gridcat_pipelines.api.rpc_bridge import RpcApplications
from gridcat_pipelines.api.schemas import REQUESTS
from gridcat_pipelines.api.services import ApiServices
from gridcat_pipelines.errors import INTERNAL, INVALID_ARGUMENT, UNAVAILABLE, GridcatError

log = logging.getLogger("gridcat.api")
access_log = logging.getLogger("gridcat.api.access")

MAX_BODY_BYTES = 1024 * 1024
_DRAIN_LIMIT = 64 * 1024 * 1024
_JSON = b"application/json"
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class Response:
    """A status, a JSON body and extra headers."""

    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None):
        self.status = status
        self.body = body
        self.headers = headers or {}

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        """``payload`` as compact JSON."""
        return cls(status, json.dumps(payload, separators=(",", ":"), default=str).encode("utf-8"), headers)

    @classmethod
    def error(cls, error: GridcatError | HttpError) -> Response:
        """An error in Connect's shape with Connect's HTTP status."""
        status, payload = connect_error(error)
        return cls.json(status, payload, getattr(error, "headers", None))


class GridcatApi:
    """The ASGI callable ``gridcat serve`` runs (one per process, sharing ``services``)."""

    def __init__(self, services: ApiServices, auth: TokenAuth, *, threads: int = 16, max_body: int = MAX_BODY_BYTES):
        self.services = services
        self.auth = auth
        self.router = Router()
        self.max_body = max_body
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gridcat-api")
        self.openapi_body = openapi.render(self.router).encode("utf-8")
        self.rpc_routes_by_path = {route.path: route for route in self.router.routes if route.is_rpc}
        self.rpc = RpcApplications(self, max_body=max_body)
        # awaited at lifespan shutdown before the worker threads stop (a second server draining)
        self.before_shutdown: Callable[[], Awaitable[None]] | None = None

    def rpc_route(self, service: str, method: str) -> Route:
        """The route of ``<service>/<method>`` (``service`` fully qualified, ``gridapi.v1.StateService``)."""
        return self.rpc_routes_by_path[f"/{service}/{method}"]

    def rpc_routes(self, service: str) -> list[Route]:
        """Every RPC route of ``service`` (``StateService`` or ``StateFacetService``)."""
        return [r for path, r in self.rpc_routes_by_path.items() if path.startswith(f"/gridapi.v1.{service}/")]

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        if _is_protobuf(scope):
            await self._protobuf(scope, receive, send, started)
            return
        response, unread = await self._respond(scope, receive)
        try:
            await _send(send, response)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                _log_request(scope, response.status, (time.perf_counter() - started) * 1000)
        if unread:
            await _drain(receive)

    async def _protobuf(self, scope: dict[str, Any], receive: Receive, send: Send, started: float) -> None:
        """A binary Connect or gRPC request: connectrpc answers it (see ``rpc_bridge``)."""
        status = 0
        held: dict[str, Any] | None = None

        async def send_logged(event: dict[str, Any]) -> None:
            # A unary answer (no trailers) in one body event gets a Content-Length, which
            # connectrpc leaves out: HTTP/1.1 clients then read it without chunked framing.
            nonlocal status, held
            if event["type"] == "http.response.start":
                status = event["status"]
                if not event.get("trailers") and not any(k == b"content-length" for k, _ in event["headers"]):
                    held = event
                    return
            elif held is not None:
                start, held = held, None
                if event["type"] == "http.response.body" and not event.get("more_body", False):
                    length = str(len(event.get("body", b""))).encode()
                    start = {**start, "headers": [*start["headers"], (b"content-length", length)]}
                await send(start)
            await send(event)

        try:
            await self.rpc(scope, receive, send_logged)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                _log_request(scope, status, (time.perf_counter() - started) * 1000)

    async def _respond(self, scope: dict[str, Any], receive: Receive) -> tuple[Response, bool]:
        """The response, and whether the request body was left unread (413)."""
        try:
            return await self._dispatch(scope, receive), False
        except _TooLarge as exc:
            return Response.error(exc.error), exc.unread
        except (GridcatError, HttpError) as exc:
            return Response.error(exc), False
        except OperationalError as exc:
            log.warning("database unavailable: %s", str(exc).splitlines()[0])
            return Response.error(GridcatError(UNAVAILABLE, "the database is unavailable; retry later")), False
        except Exception:
            log.exception("internal error serving %s %s", scope.get("method"), scope.get("path"))
            return Response.error(GridcatError(INTERNAL, "internal error (logged by the server)")), False

    async def _dispatch(self, scope: dict[str, Any], receive: Receive) -> Response:
        method, path = scope["method"], scope["path"]
        if path == "/healthz":
            _allow(method, ("GET",))
            return await self._health()
        if path == "/openapi.json":
            _allow(method, ("GET",))
            return Response(200, self.openapi_body)
        route, params = self.router.resolve(method, path)
        headers = _headers(scope)
        principal = self.auth.authenticate(headers.get("authorization"))
        principal.require(route.role)
        message = await self._message(route, headers, receive)
        call = Call(
            message=message, principal=principal, path_params=_checked(params, "path"), query=self._query(route, scope)
        )
        key = headers.get("idempotency-key") if route.mutation else None
        if key is None:
            return await self._run(route, call)
        return await self.run_once(route, call, principal, self.services.idempotency.check_key(key), path)

    async def _message(self, route: Route, headers: dict[str, str], receive: Receive) -> dict[str, Any]:
        if route.request is None:
            return {}
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            raise (
                _TooLarge(self.max_body, unread=True)
                if length.isdigit()
                else HttpError(400, INVALID_ARGUMENT, "Content-Length is not a number")
            )
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype and ctype != "application/json" or (route.is_rpc and not ctype):
            raise HttpError(415, INVALID_ARGUMENT, f"Content-Type must be application/json, not {ctype or 'missing'!r}")
        body = await _read_body(receive, self.max_body)
        return read_message(body, REQUESTS[route.request])

    def _query(self, route: Route, scope: dict[str, Any]) -> dict[str, str]:
        raw = scope.get("query_string", b"").decode("latin-1")
        try:
            pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=False, errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise GridcatError(INVALID_ARGUMENT, "query string is not valid UTF-8") from None
        allowed = {p["name"] for p in route.query_params}
        unknown = sorted({k for k, _ in pairs} - allowed)
        if unknown:
            raise GridcatError(
                INVALID_ARGUMENT, f"unknown query parameter(s): {', '.join(unknown)}", [{"fields": unknown}]
            )
        return _checked(dict(pairs), "query")

    async def _run(self, route: Route, call: Call) -> Response:
        payload = await self.in_thread(route.handler, self.services, call)
        return Response.json(route.status, payload)

    async def run_once(self, route: Route, call: Call, principal: Principal, key: str, path: str) -> Response:
        """:meth:`run_once_blocking` in a worker thread."""
        return await self.in_thread(self.run_once_blocking, route, call, principal, key, path)

    def run_once_blocking(self, route: Route, call: Call, principal: Principal, key: str, path: str) -> Response:
        """Run ``route`` once per idempotency key: claim the key, run the handler, store the
        response (a 5xx is not kept); a claimed key answers the stored response, marked replayed."""
        store = self.services.idempotency
        digest = request_hash(route.method, path, {"message": call.message, "query": call.query})
        claim = store.claim(principal.id, key, digest)
        if isinstance(claim, StoredResponse):
            return Response(claim.status, claim.body, {"idempotent-replayed": "true"})
        try:
            response = Response.json(route.status, route.handler(self.services, call))
        except (GridcatError, HttpError) as exc:
            response = Response.error(exc)
        except BaseException:
            store.complete(principal.id, key, claim, 500, b"")
            raise
        store.complete(principal.id, key, claim, response.status, response.body)
        return response

    async def _health(self) -> Response:
        try:
            payload = await self.in_thread(self.services.health)
        except Exception as exc:  # the database is down or unreachable: say so, 503
            log.warning("health check failed: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return Response.error(GridcatError(UNAVAILABLE, f"database check failed: {type(exc).__name__}"))
        return Response.json(200, payload)

    async def in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                if self.before_shutdown is not None:
                    await self.before_shutdown()
                self.executor.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


class _TooLarge(Exception):
    def __init__(self, limit: int, *, unread: bool):
        super().__init__("request body too large")
        self.unread = unread
        self.error = HttpError(
            413, "RESOURCE_EXHAUSTED", f"request body is larger than {limit} bytes", [{"limit_bytes": limit}]
        )


def _log_request(scope: dict[str, Any], status: int, ms: float) -> None:
    """The request's access line; the path percent-encoded (as uvicorn does), no query string."""
    method, path = str(scope.get("method", "")), quote(str(scope.get("path", "")))
    access_log.info(
        "%s %s %d %.1f ms",
        method,
        path,
        status,
        ms,
        extra={"method": method, "path": path, "status": status, "duration_ms": round(ms, 1)},
    )


_PROTOBUF_TYPES = (b"application/proto", b"application/grpc", b"application/connect+")


def _is_protobuf(scope: dict[str, Any]) -> bool:
    """A request for connectrpc: an RPC path with a protobuf, gRPC or Connect streaming content type."""
    if not scope["path"].startswith(RPC_PREFIX):
        return False
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-type":
            return value.lower().startswith(_PROTOBUF_TYPES)
    return False


def _allow(method: str, allowed: tuple[str, ...]) -> None:
    if method not in allowed:
        raise HttpError(
            405, "UNIMPLEMENTED", f"method {method} is not allowed here", headers={"allow": ", ".join(allowed)}
        )


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}


def _checked(values: dict[str, str], where: str) -> dict[str, str]:
    for name, value in values.items():
        check_string(value, f"{where} parameter {name}")
    return values


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            raise GridcatError(INVALID_ARGUMENT, "client disconnected before sending the body")
        chunk = event.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge(limit, unread=event.get("more_body", False))
        chunks.append(chunk)
        if not event.get("more_body", False):
            return b"".join(chunks)


async def _drain(receive: Receive) -> None:
    """Read and drop the rest of a rejected body so the client can read the answer."""
    seen = 0
    while seen < _DRAIN_LIMIT:
        event = await receive()
        if event["type"] != "http.request" or not event.get("more_body", False):
            return
        seen += len(event.get("body", b""))


async def _send(send: Send, response: Response) -> None:
    headers = [(b"content-type", _JSON), (b"content-length", str(len(response.body)).encode())]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
