"""Running the API: uvicorn on one event loop, graceful shutdown on SIGTERM/SIGINT.

On SIGTERM uvicorn stops accepting connections, lets requests in flight finish (at most
``GRACEFUL_SECONDS``), runs the app's lifespan shutdown (worker threads joined) and exits 0;
the database connections are released last.
"""

from __future__ import annotations

import logging
import signal
import sys

import uvicorn

from gridcat_pipelines.api.app import GridcatApi
from gridcat_pipelines.api.auth import TokenAuth
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


def build_auth(settings: Settings, *, no_auth: bool) -> TokenAuth:
    """The token check; ``FAILED_PRECONDITION`` when no token is configured and auth is on."""
    auth = TokenAuth.from_settings(settings.api_admin_tokens, settings.api_read_tokens, enabled=not no_auth)
    if auth.enabled and not auth.configured:
        raise failed_precondition(
            "no API tokens configured: set GRIDCAT_API_ADMIN_TOKENS and/or GRIDCAT_API_READ_TOKENS "
            "(comma-separated), or pass --no-auth to serve without authentication"
        )
    return auth


def serve(settings: Settings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, no_auth: bool = False,
          log_level: str = "info", access_log: bool = True) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status."""
    auth = build_auth(settings, no_auth=no_auth)
    services = ApiServices.open(settings.db_url, connections=WORKER_THREADS)
    try:
        app = GridcatApi(services, auth, threads=WORKER_THREADS)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="on",
            log_level=log_level,
            access_log=access_log,
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
            server_header=False,
        )
        server = uvicorn.Server(config)
        logging.getLogger("gridcat.api").setLevel(log_level.upper())
        sys.stderr.write(
            f"gridcat serve: http://{host}:{port} database={services.store.dialect} "
            f"auth={'tokens' if auth.enabled else 'OFF (--no-auth)'}\n"
        )
        sys.stderr.flush()
        previous = signal.signal(signal.SIGTERM, _drained)  # uvicorn re-raises SIGTERM after draining
        try:
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
