"""The second port of ``gridcat serve --grpc-port N``: HTTP/2 for gRPC clients.

uvicorn (the main port) speaks HTTP/1.1 only; gRPC needs HTTP/2 and trailers. hypercorn serves
the same ASGI application on the second port, cleartext HTTP/2 with prior knowledge (what
``grpc.insecure_channel`` and grpc-go's ``insecure.NewCredentials()`` send) and HTTP/1.1, in the
same process and event loop as uvicorn. SIGTERM, caught by uvicorn, stops both at once; the
API's worker threads stop after both drained.

Every request on this port reaches the application only once its body was received in full
(at most ``limit`` bytes kept, the rest read and dropped). hypercorn 0.18 drops the whole
HTTP/2 connection, every stream on it, when request data arrives for a stream it already
answered, which an early answer (a refused token, an unknown method) would otherwise cause.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
DRAIN_LIMIT = 64 * 1024 * 1024  # past this a body is not read on: the stream is answered and reset


def grpc_config(host: str, port: int, *, graceful_seconds: float) -> HypercornConfig:
    """hypercorn on ``host:port``, no access log (the app logs requests), errors to the
    ``hypercorn.error`` logger that ``gridcat serve``'s log configuration formats."""
    config = HypercornConfig()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = graceful_seconds
    config.keep_alive_timeout = 75
    return config


async def serve_with_grpc(
    server: uvicorn.Server, app: Any, host: str, grpc_port: int, *, graceful_seconds: float
) -> None:
    """Run ``server`` (uvicorn, the main port) and hypercorn on ``grpc_port`` until SIGTERM."""
    stop = asyncio.Event()
    config = grpc_config(host, grpc_port, graceful_seconds=graceful_seconds)
    grpc = asyncio.create_task(
        hypercorn_serve(whole_bodies(without_lifespan(app), app.max_body), config, shutdown_trigger=stop.wait)
    )

    async def watch_uvicorn() -> None:
        while not server.should_exit:
            await asyncio.sleep(0.05)
        stop.set()

    async def grpc_drained() -> None:
        stop.set()
        await asyncio.wait({grpc}, timeout=graceful_seconds + 1)

    watcher = asyncio.create_task(watch_uvicorn())
    app.before_shutdown = grpc_drained
    try:
        await server.serve()
    finally:
        stop.set()
        watcher.cancel()
        await asyncio.wait({grpc}, timeout=graceful_seconds + 1)
    if grpc.done() and not grpc.cancelled() and grpc.exception() is not None:
        raise grpc.exception()


def without_lifespan(app: ASGIApp) -> ASGIApp:
    """``app`` with its lifespan events acknowledged here, not passed on (the main port's
    lifespan owns the worker threads)."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = await receive()
                if event["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif event["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await app(scope, receive, send)

    return asgi


def whole_bodies(app: ASGIApp, limit: int) -> ASGIApp:
    """``app`` called once the request body is in: the first ``limit`` + 64 KiB bytes are kept
    and replayed to it (enough for the app to see a body is too large), the rest is dropped."""
    keep = limit + 64 * 1024

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        chunks: list[bytes] = []
        kept = seen = 0
        while True:
            event = await receive()
            if event["type"] != "http.request":
                chunks = []
                break
            body = event.get("body", b"")
            seen += len(body)
            if kept < keep and body:
                chunks.append(body[: keep - kept])
                kept += len(chunks[-1])
            if not event.get("more_body", False) or seen > DRAIN_LIMIT:
                break
        events = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
        events.append({"type": "http.request", "body": b"", "more_body": False})

        async def replay() -> dict[str, Any]:
            if events:
                return events.pop(0)
            return await receive()

        await app(scope, replay, send)

    return asgi
