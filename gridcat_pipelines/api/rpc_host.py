"""What the protobuf transports (``rpc_bridge``, ``grpc_port``, ``rpc_core``) need of the API
application: its services, auth, routes, worker threads and idempotent runs. ``GridcatApi``
is one; the transports name this protocol, not the application, so they do not import it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from gridcat_pipelines.api.auth import Principal, TokenAuth
from gridcat_pipelines.api.calls import Call
from gridcat_pipelines.api.route import Route
from gridcat_pipelines.api.services import ApiServices


class RpcHost(Protocol):
    """The API application as the protobuf transports see it."""

    services: ApiServices
    auth: TokenAuth
    max_body: int
    rpc_routes_by_path: dict[str, Route]
    # awaited at lifespan shutdown before the worker threads stop (the gRPC port draining)
    before_shutdown: Callable[[], Awaitable[None]] | None

    async def in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in a worker thread."""
        ...

    def run_once_blocking(self, route: Route, call: Call, principal: Principal, key: str, path: str) -> Any:
        """``route`` run once per idempotency key (blocking)."""
        ...

    def rpc_route(self, service: str, method: str) -> Route:
        """The route of ``<service>/<method>``."""
        ...

    def rpc_routes(self, service: str) -> list[Route]:
        """Every RPC route of ``service``."""
        ...
