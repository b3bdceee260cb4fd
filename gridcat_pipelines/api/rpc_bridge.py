"""The gridapi.v1 services over connectrpc: binary Connect (``application/proto``) and gRPC.

Both generated services (``StateService``, ``StateFacetService``) are served by one generic
implementation that hands every RPC to the same route and handler as the JSON path
(:mod:`gridcat_pipelines.api.state_rpcs`, :mod:`~gridcat_pipelines.api.facet_rpcs`):

1. a metadata interceptor authenticates the ``authorization`` header (gRPC metadata alike)
   before the request body is read, and checks the route's role;
2. connectrpc decodes the message (at most ``MAX_BODY_BYTES``, else ``resource_exhausted``);
3. :func:`~gridcat_pipelines.api.proto_messages.to_dict` turns it into the JSON API's dict,
   checked against the same JSON Schema;
4. the handler runs in the API's worker threads, through the same idempotency store when an
   ``idempotency-key`` header is sent;
5. the answer becomes the response message; an error becomes a ``ConnectError`` with the same
   code, message and details (each a ``gridapi.v1.ErrorDetail``).
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from connectrpc.code import Code
from connectrpc.errors import ConnectError, ErrorDetail
from connectrpc.request import RequestContext
from google.protobuf.message import Message
from protobuf.wkt import Any as AnyMessage
from sqlalchemy.exc import OperationalError

from gridcat_pipelines.api.auth import Principal
from gridcat_pipelines.api.calls import Call
from gridcat_pipelines.api.errors import HttpError
from gridcat_pipelines.api.gen.gridapi.v1 import state_facet_service_connect, state_service_connect
from gridcat_pipelines.api.messages import check_text, validate
from gridcat_pipelines.api.proto_messages import error_detail, fill, to_dict
from gridcat_pipelines.api.route import Route
from gridcat_pipelines.api.schemas import REQUESTS
from gridcat_pipelines.errors import INTERNAL, UNAVAILABLE, GridcatError

if TYPE_CHECKING:
    from gridcat_pipelines.api.app import GridcatApi

log = logging.getLogger("gridcat.api")

_principal: ContextVar[Principal] = ContextVar("gridcat_principal")

# (generated ASGI application class, its service name)
SERVICES = (
    (state_service_connect.StateServiceASGIApplication, "StateService"),
    (state_facet_service_connect.StateFacetServiceASGIApplication, "StateFacetService"),
)


def snake(name: str) -> str:
    """``GetStateHistory`` → ``get_state_history`` (the generated method names)."""
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


ERROR_DETAIL_TYPE = "type.googleapis.com/gridapi.v1.ErrorDetail"


def packed_detail(value: Any) -> ErrorDetail:
    """One JSON error detail packed as connectrpc sends it (an Any of ``gridapi.v1.ErrorDetail``)."""
    return ErrorDetail(AnyMessage(type_url=ERROR_DETAIL_TYPE, value=error_detail(value).SerializeToString()))


def connect_error(error: GridcatError | HttpError) -> ConnectError:
    """The API error as a ConnectError: same code, message and details."""
    return ConnectError(Code(error.code.lower()), error.message, [packed_detail(d) for d in error.details])


class _Authenticate:
    """Metadata interceptor: the token and the route's role, before the body is read."""

    def __init__(self, api: GridcatApi):
        self.api = api

    async def on_start(self, ctx: RequestContext) -> None:
        route = self.api.rpc_route(ctx.method.service_name, ctx.method.name)
        try:
            principal = self.api.auth.authenticate(ctx.request_headers.get("authorization"))
            principal.require(route.role)
        except GridcatError as exc:
            raise connect_error(exc) from None
        _principal.set(principal)

    async def on_end(self, token: None, ctx: RequestContext, error: Exception | None) -> None:
        return None


class _Service:
    """Every RPC of one service as the generated Protocol's coroutine methods."""

    def __init__(self, api: GridcatApi, service: str):
        self._api = api
        for route in api.router.routes:
            if route.is_rpc and route.path.startswith(f"/gridapi.v1.{service}/"):
                setattr(self, snake(route.path.rsplit("/", 1)[1]), self._bind(route))

    def _bind(self, route: Route):
        async def rpc(request: Message, ctx: RequestContext) -> Message:
            return await invoke(self._api, route, request, ctx)

        return rpc


async def invoke(api: GridcatApi, route: Route, request: Message, ctx: RequestContext) -> Message:
    """Run ``route``'s handler for a protobuf request; the response message or a ConnectError."""
    response = ctx.method.output()
    try:
        message = to_dict(request)
        check_text(message)
        validate(message, REQUESTS[route.request])
        call = Call(message=message, principal=_principal.get())
        key = ctx.request_headers.get("idempotency-key") if route.mutation else None
        if key is None:
            payload = await api.in_thread(route.handler, api.services, call)
        else:
            key = api.services.idempotency.check_key(key)
            stored = await api.run_once(route, call, _principal.get(), key, route.path)
            payload = json.loads(stored.body)
            if stored.status >= 400:
                raise ConnectError(
                    Code(payload["code"]), payload["message"], [packed_detail(d) for d in payload.get("details", [])]
                )
            if "idempotent-replayed" in stored.headers:
                ctx.response_headers["idempotent-replayed"] = "true"
        fill(response, payload)
        return response
    except ConnectError:
        raise
    except (GridcatError, HttpError) as exc:
        raise connect_error(exc) from None
    except OperationalError as exc:
        log.warning("database unavailable: %s", str(exc).splitlines()[0])
        raise connect_error(GridcatError(UNAVAILABLE, "the database is unavailable; retry later")) from None
    except Exception:
        log.exception("internal error serving %s", route.path)
        raise connect_error(GridcatError(INTERNAL, "internal error (logged by the server)")) from None


class RpcApplications:
    """The ASGI application for every protobuf request: one connectrpc app per service."""

    def __init__(self, api: GridcatApi, *, max_body: int):
        interceptors = [_Authenticate(api)]
        self._apps: dict[str, Any] = {
            f"/gridapi.v1.{service}/": app_class(
                _Service(api, service), interceptors=interceptors, read_max_bytes=max_body
            )
            for app_class, service in SERVICES
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"]
        for prefix, app in self._apps.items():
            if path.startswith(prefix):
                await app(scope, receive, send)
                return
        app = next(iter(self._apps.values()))  # an unknown service: connectrpc's own 404
        await app(scope, receive, send)
