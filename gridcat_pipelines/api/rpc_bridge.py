"""Binary Connect (``application/proto``) on the main port, served by connectrpc.

Both generated services (``StateService``, ``StateFacetService``) are served by one generic
implementation that hands every RPC to :func:`~gridcat_pipelines.api.rpc_core.answer`, the same
route and handler as the JSON path:

1. a metadata interceptor checks the ``authorization`` header and the route's role before the
   request body is read;
2. connectrpc decodes the message (at most ``max_body`` bytes, else ``resource_exhausted``);
3. ``answer`` runs the handler (idempotent with an ``idempotency-key`` header) and fills the
   response; an error becomes a ``ConnectError`` with the same code, message and details (each
   a ``gridapi.v1.ErrorDetail`` packed in ``google.protobuf.Any``).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from connectrpc.code import Code
from connectrpc.errors import ConnectError, ErrorDetail
from connectrpc.request import RequestContext
from google.protobuf.message import Message
from protobuf.wkt import Any as AnyMessage

from gridcat_pipelines.api.auth import Principal
from gridcat_pipelines.api.errors import HttpError
from gridcat_pipelines.api.gen.gridapi.v1 import state_facet_service_connect, state_service_connect
from gridcat_pipelines.api.proto_messages import error_detail, snake
from gridcat_pipelines.api.route import Route
from gridcat_pipelines.api.rpc_core import REPLAYED_HEADER, answer, authorize
from gridcat_pipelines.api.rpc_host import RpcHost
from gridcat_pipelines.errors import GridcatError

ERROR_DETAIL_TYPE = "type.googleapis.com/gridapi.v1.ErrorDetail"
_principal: ContextVar[Principal] = ContextVar("gridcat_principal")

# (generated ASGI application class, its service name)
SERVICES = (
    (state_service_connect.StateServiceASGIApplication, "StateService"),
    (state_facet_service_connect.StateFacetServiceASGIApplication, "StateFacetService"),
)


def packed_detail(value: Any) -> ErrorDetail:
    """One JSON error detail as connectrpc sends it (an Any of ``gridapi.v1.ErrorDetail``)."""
    return ErrorDetail(AnyMessage(type_url=ERROR_DETAIL_TYPE, value=error_detail(value).SerializeToString()))


def as_connect_error(error: GridcatError | HttpError) -> ConnectError:
    """The API error as a ConnectError: same code, message and details."""
    return ConnectError(Code(error.code.lower()), error.message, [packed_detail(d) for d in error.details])


class _Authenticate:
    """Metadata interceptor: the token and the route's role, before the body is read."""

    def __init__(self, api: RpcHost):
        self.api = api

    async def on_start(self, ctx: RequestContext) -> None:
        route = self.api.rpc_route(ctx.method.service_name, ctx.method.name)
        try:
            _principal.set(authorize(self.api, route, ctx.request_headers.get("authorization")))
        except GridcatError as exc:
            raise as_connect_error(exc) from None

    async def on_end(self, token: None, ctx: RequestContext, error: Exception | None) -> None:
        return None


class _Service:
    """Every RPC of one service as the generated Protocol's coroutine methods."""

    def __init__(self, api: RpcHost, service: str):
        for route in api.rpc_routes(service):
            setattr(self, snake(route.path.rsplit("/", 1)[1]), _method(api, route))


def _method(api: RpcHost, route: Route):
    async def rpc(request: Message, ctx: RequestContext) -> Message:
        response = ctx.method.output()
        try:
            replayed = await api.in_thread(
                answer, api, route, request, response, _principal.get(), ctx.request_headers.get("idempotency-key")
            )
        except (GridcatError, HttpError) as exc:
            raise as_connect_error(exc) from None
        if replayed:
            ctx.response_headers[REPLAYED_HEADER] = "true"
        return response

    return rpc


class RpcApplications:
    """The ASGI application for every protobuf request on the main port: one connectrpc
    application per service, chosen by path."""

    def __init__(self, api: RpcHost, *, max_body: int):
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
