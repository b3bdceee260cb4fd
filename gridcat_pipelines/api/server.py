"""Running the API: uvicorn on one event loop, graceful shutdown on SIGTERM/SIGINT.

On SIGTERM uvicorn stops accepting connections, lets requests in flight finish (at most
``GRACEFUL_SECONDS``), runs the app's lifespan shutdown (worker threads joined) and exits 0;
the database connections are released last.

Logging is one configuration (:func:`log_config`, a ``logging.config.dictConfig`` dict that
uvicorn gets as ``log_config``): the ``uvicorn``, ``uvicorn.error``, ``uvicorn.access`` and
``gridcat`` loggers write to stderr at ``--log-level``, with a UTC timestamp, as text
(``2026-12-06T13:07:59.123Z INFO gridcat.api.access: GET /healthz 200 1.4 ms``) or, with
``--log-format json``, one JSON object per line (``ts``, ``level``, ``logger``, ``message``;
requests add ``method``, ``path``, ``status``, ``duration_ms``). Requests are logged by the app
(``gridcat.api.access``, with the duration) instead of uvicorn's access log. Headers, tokens,
query strings and bodies are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import logging.config
import signal
import time
from typing import Any

import uvicorn

from gridcat_pipelines.api.app import GridcatApi
from gridcat_pipelines.api.auth import TokenAuth
from gridcat_pipelines.api.grpc_port import serve_with_grpc
from gridcat_pipelines.api.services import ApiServices
from gridcat_pipelines.config import Settings
from gridcat_pipelines.errors import failed_precondition

GRACEFUL_SECONDS = 5
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
# Service calls run in these threads (the connection pool matches them). More threads only
# contend for the GIL with the event loop: measured with bench/http.py at 16 clients, GetState
# req/s was the same with 4, 8 and 16 threads, and p99 grew with them (24, 46, 33 ms).
WORKER_THREADS = 4
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")

log = logging.getLogger("gridcat.api.server")


def _timestamp(record: logging.LogRecord) -> str:
    """``2026-12-06T13:07:59.123Z``: the record's time in UTC, to the millisecond."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """``<ts> <LEVEL> <logger>: <message>`` (and the traceback of an exception, indented)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts``, ``level``, ``logger``, ``message``, the request fields
    (``method``, ``path``, ``status``, ``duration_ms``) when present, ``exc`` for a traceback."""

    FIELDS = ("method", "path", "status", "duration_ms")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self.FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def log_config(level: str = "info", fmt: str = "text", *, access_log: bool = True) -> dict[str, Any]:
    """The one logging configuration of ``gridcat serve`` (for ``logging.config.dictConfig``)."""
    level = level.upper()
    formatter = {"text": TextFormatter, "json": JsonFormatter}[fmt]
    to_stderr = {"handlers": ["stderr"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"gridcat": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "gridcat", "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "uvicorn": to_stderr,
            "uvicorn.error": {"level": level, "propagate": True},  # through "uvicorn"
            # uvicorn's access log is off (gridcat.api.access has the duration); formatted alike if on
            "uvicorn.access": to_stderr,
            "gridcat": to_stderr,
            "gridcat.api.access": {"level": level if access_log else "WARNING", "propagate": True},
            # grpcio's own Python logger (the C core logs through GRPC_VERBOSITY, ERROR by default)
            "grpc": to_stderr,
        },
        # everything else (libraries' warnings) the same way
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


def build_auth(settings: Settings, *, no_auth: bool) -> TokenAuth:
    """The token check; ``FAILED_PRECONDITION`` when no token is configured and auth is on."""
    auth = TokenAuth.from_settings(settings.api_admin_tokens, settings.api_read_tokens, enabled=not no_auth)
    if auth.enabled and not auth.configured:
        raise failed_precondition(
            "no API tokens configured: set GRIDCAT_API_ADMIN_TOKENS and/or GRIDCAT_API_READ_TOKENS "
            "(comma-separated), or pass --no-auth to serve without authentication"
        )
    return auth


def serve(
    settings: Settings,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    no_auth: bool = False,
    log_level: str = "info",
    access_log: bool = True,
    log_format: str = "text",
    grpc_port: int | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status. ``access_log=False``: no request lines.

    ``grpc_port``: also serve gRPC (cleartext HTTP/2) on that port with grpcio, in the same
    process and event loop (see ``grpc_port.py``); uvicorn, which serves ``port``, speaks
    HTTP/1.1 only."""
    logging_config = log_config(log_level, log_format, access_log=access_log)
    logging.config.dictConfig(logging_config)
    auth = build_auth(settings, no_auth=no_auth)
    # the gRPC port's threads use the same database pool
    services = ApiServices.open(settings.db_url, connections=WORKER_THREADS * (2 if grpc_port else 1))
    try:
        app = GridcatApi(services, auth, threads=WORKER_THREADS)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="on",
            log_config=logging_config,
            log_level=log_level,
            access_log=False,  # the app logs each request itself (gridcat.api.access), with its duration
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
            server_header=False,
        )
        server = uvicorn.Server(config)
        log.info(
            "gridcat serve: http://%s:%d%s database=%s auth=%s",
            host,
            port,
            f" grpc={host}:{grpc_port}" if grpc_port else "",
            services.store.dialect,
            "tokens" if auth.enabled else "OFF (--no-auth)",
        )
        previous = signal.signal(signal.SIGTERM, _drained)  # uvicorn re-raises SIGTERM after draining
        try:
            if grpc_port:
                asyncio.run(
                    serve_with_grpc(
                        server, app, host, grpc_port, graceful_seconds=GRACEFUL_SECONDS, threads=WORKER_THREADS
                    )
                )
            else:
                server.run()
        except _Drained:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
        return 0 if server.started else 1
    finally:
        services.close()


class _Drained(Exception):
    """SIGTERM after uvicorn finished its graceful shutdown: exit 0."""


def _drained(signum: int, frame: object) -> None:
    raise _Drained()
