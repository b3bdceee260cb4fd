"""The second port of ``gridcat serve --grpc-port N``: gRPC, served by grpcio.

uvicorn (the main port) speaks HTTP/1.1 only; gRPC needs HTTP/2 and trailers. grpcio's server
serves the two generated services on the second port (cleartext HTTP/2, what
``grpc.insecure_channel`` and grpc-go's ``insecure.NewCredentials()`` dial) in the same process,
its calls in a pool of its own threads, through the same
:func:`~gridcat_pipelines.api.rpc_core.answer` as binary Connect and the same handlers as JSON.
Measured with ``bench/http.py`` (GetState, 16 clients, PostgreSQL, 2 cores): hypercorn serving
connectrpc's gRPC protocol reached 700 requests/s (p99 48 ms), grpcio's asyncio server 866
(p99 37 ms), this threaded server 955 (p99 24 ms).

- ``authorization`` metadata is checked by a server interceptor before the message is read;
- a message over ``max_body`` bytes is ``RESOURCE_EXHAUSTED`` (grpcio's receive limit);
- an error keeps its code and message; its details travel in ``grpc-status-details-bin`` as a
  ``google.rpc.Status`` whose details are ``gridapi.v1.ErrorDetail``\\ s (what
  ``grpc_status.rpc_status.from_call`` reads);
- a replayed idempotent answer carries ``idempotent-replayed: true`` initial metadata;
- SIGTERM, caught by uvicorn, stops both ports at once: calls in flight get
  ``graceful_seconds`` to finish, then the API's worker threads stop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import uvicorn
from google.protobuf import any_pb2
from google.rpc import status_pb2

from gridcat_pipelines.api.errors import HttpError
from gridcat_pipelines.api.gen.gridapi.v1 import (
    state_facet_service_pb2,
    state_facet_service_pb2_grpc,
    state_service_pb2,
    state_service_pb2_grpc,
)
from gridcat_pipelines.api.proto_messages import error_detail
from gridcat_pipelines.api.route import Route
from gridcat_pipelines.api.rpc_core import REPLAYED_HEADER, answer, authorize
from gridcat_pipelines.api.rpc_host import RpcHost
from gridcat_pipelines.errors import GridcatError

access_log = logging.getLogger("gridcat.api.access")

# (the generated registration function, its service name, its messages module)
SERVICES = (
    (state_service_pb2_grpc.add_StateServiceServicer_to_server, "StateService", state_service_pb2),
    (
        state_facet_service_pb2_grpc.add_StateFacetServiceServicer_to_server,
        "StateFacetService",
        state_facet_service_pb2,
    ),
)
DETAILS_KEY = "grpc-status-details-bin"


def status_code(code: str) -> grpc.StatusCode:
    """``INVALID_ARGUMENT`` → ``grpc.StatusCode.INVALID_ARGUMENT``."""
    return grpc.StatusCode[code]


def status_details(error: GridcatError | HttpError) -> bytes:
    """The error as the ``google.rpc.Status`` that ``grpc-status-details-bin`` carries."""
    status = status_pb2.Status(code=status_code(error.code).value[0], message=error.message)
    for value in error.details:
        packed = any_pb2.Any()
        packed.Pack(error_detail(value))
        status.details.append(packed)
    return status.SerializeToString()


def abort(context: grpc.ServicerContext, error: GridcatError | HttpError) -> None:
    """End the call with the error's code, message and details (raises, as grpcio's abort does)."""
    context.abort_with_status(_Status(error))


class _Status(grpc.Status):
    """A ``grpc.Status`` carrying the error's details in ``grpc-status-details-bin``."""

    def __init__(self, error: GridcatError | HttpError):
        self.code = status_code(error.code)
        self.details = error.message
        self.trailing_metadata = ((DETAILS_KEY, status_details(error)),)


def metadata_value(metadata: Any, name: str) -> str | None:
    """The value of ``name`` in gRPC invocation metadata (``(key, value)`` pairs), or ``None``."""
    return next((value for key, value in metadata or () if key == name), None)


class _Authenticate(grpc.ServerInterceptor):
    """Refuses a call with no, an unknown or a too weak token before its message is read."""

    def __init__(self, api: RpcHost):
        self.api = api

    def intercept_service(self, continuation: Callable[..., Any], details: Any) -> Any:
        route = self.api.rpc_routes_by_path.get(details.method)
        if route is None:
            return continuation(details)  # unknown: grpcio answers UNIMPLEMENTED
        try:
            authorize(self.api, route, metadata_value(details.invocation_metadata, "authorization"))
        except GridcatError as exc:
            error = exc

            def refuse(request: bytes, context: grpc.ServicerContext) -> None:
                log_call(route.path, error.code, 0.0)
                abort(context, error)

            return grpc.unary_unary_rpc_method_handler(refuse)
        return continuation(details)


class _Servicer:
    """Every RPC of one service as the generated servicer's ``Method(request, context)``."""

    def __init__(self, api: RpcHost, service: str, messages: Any):
        for route in api.rpc_routes(service):
            setattr(self, route.path.rsplit("/", 1)[1], _method(api, route, getattr(messages, route.response)))


def _method(api: RpcHost, route: Route, response_class: type):
    def rpc(request: Any, context: grpc.ServicerContext) -> Any:
        started = time.perf_counter()
        response = response_class()
        code = "OK"
        try:
            metadata = context.invocation_metadata()
            principal = authorize(api, route, metadata_value(metadata, "authorization"))
            if answer(api, route, request, response, principal, metadata_value(metadata, "idempotency-key")):
                context.send_initial_metadata(((REPLAYED_HEADER, "true"),))
            return response
        except (GridcatError, HttpError) as exc:
            code = exc.code
            abort(context, exc)
        finally:
            log_call(route.path, code, (time.perf_counter() - started) * 1000)

    return rpc


def log_call(path: str, code: str, ms: float) -> None:
    """The call's access line, like the HTTP ones, with the gRPC status name as its status
    (``POST /gridapi.v1.StateService/GetState OK 1.2 ms``)."""
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(
            "POST %s %s %.1f ms",
            path,
            code,
            ms,
            extra={"method": "POST", "path": path, "status": code, "duration_ms": round(ms, 1)},
        )


def grpc_server(api: RpcHost, host: str, port: int, *, threads: int) -> grpc.Server:
    """The grpcio server for both services on ``host:port`` (not started); calls run in
    ``threads`` threads of its own (the handlers block on the database)."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gridcat-grpc"),
        interceptors=[_Authenticate(api)],
        options=[("grpc.max_receive_message_length", api.max_body), ("grpc.so_reuseport", 0)],
    )
    for register, service, messages in SERVICES:
        register(_Servicer(api, service, messages), server)
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"cannot listen on {host}:{port} for gRPC")
    return server


async def serve_with_grpc(
    server: uvicorn.Server, app: RpcHost, host: str, grpc_port: int, *, graceful_seconds: float, threads: int
) -> None:
    """Run ``server`` (uvicorn, the main port) and the gRPC server until SIGTERM."""
    grpc_srv = grpc_server(app, host, grpc_port, threads=threads)
    grpc_srv.start()
    loop = asyncio.get_running_loop()
    stopping: asyncio.Future | None = None

    def stop_grpc() -> asyncio.Future:
        nonlocal stopping
        if stopping is None:  # calls in flight get graceful_seconds; new ones are refused
            stopping = loop.run_in_executor(None, lambda: grpc_srv.stop(graceful_seconds).wait())
        return stopping

    async def watch_uvicorn() -> None:
        while not server.should_exit:
            await asyncio.sleep(0.05)
        await stop_grpc()

    watcher = asyncio.create_task(watch_uvicorn())
    app.before_shutdown = lambda: asyncio.wait_for(asyncio.shield(stop_grpc()), graceful_seconds + 1)
    try:
        await server.serve()
    finally:
        watcher.cancel()
        await stop_grpc()
