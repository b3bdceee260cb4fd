"""``gridcat serve [--host 127.0.0.1] [--port 8787] [--grpc-port N] [--no-auth] [--log-level info] [--log-format text]``: the API.

The gridapi.v1 RPCs answer Connect with JSON (``application/json``) or binary protobuf
(``application/proto``) on ``--port``; ``--grpc-port`` also serves gRPC (HTTP/2 without TLS) on a
second port, for grpcio and grpc-go clients. The contract is ``proto/gridapi/v1/*.proto``.

Bearer tokens come from ``GRIDCAT_API_ADMIN_TOKENS`` / ``GRIDCAT_API_READ_TOKENS``; with none
configured the command exits 1 at once unless ``--no-auth`` is given. The database is the
CLI's (``GRIDCAT_DB_URL``, default SQLite under ``GRIDCAT_HOME``); run ``gridcat db upgrade``
first. SIGTERM drains requests in flight and exits 0. Logs go to stderr with a UTC timestamp,
one line per request (method, path, status, duration in ms); --log-format json writes one JSON
object per line.
"""

from __future__ import annotations

import argparse

from gridcat_pipelines.cli.state_commands import parse_int
from gridcat_pipelines.config import Settings
from gridcat_pipelines.errors import invalid_argument


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``serve`` command."""
    p = commands.add_parser(
        "serve",
        help="serve the API (Connect and gRPC RPCs for states and tag facets, the facet-type catalog spec REST, /healthz, /openapi.json)",
        description=__doc__.split("\n\n", 1)[1].replace("``", ""),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", default="8787", help="port (default 8787)")
    p.add_argument(
        "--grpc-port",
        default=None,
        help="also serve gRPC (HTTP/2, cleartext) on this port (default: off)",
    )
    p.add_argument("--no-auth", action="store_true", help="serve without tokens (every caller is admin)")
    p.add_argument("--log-level", default="info", help="debug, info, warning or error (default info)")
    p.add_argument(
        "--log-format",
        default="text",
        help="text (default) or json: one JSON object per line (ts, level, logger, message; "
        "requests add method, path, status, duration_ms)",
    )
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until SIGTERM."""
    from gridcat_pipelines.api.server import serve

    port = parse_int(args.port, "port")
    if port is None or not 0 < port < 65536:
        raise invalid_argument(f"port {args.port!r} must be from 1 to 65535")
    if args.log_level not in ("debug", "info", "warning", "error"):
        raise invalid_argument(f"log level {args.log_level!r} must be debug, info, warning or error")
    if args.log_format not in ("text", "json"):
        raise invalid_argument(f"log format {args.log_format!r} must be text or json")
    grpc_port = None
    if args.grpc_port is not None:
        grpc_port = parse_int(args.grpc_port, "grpc port")
        if grpc_port is None or not 0 < grpc_port < 65536:
            raise invalid_argument(f"grpc port {args.grpc_port!r} must be from 1 to 65535")
        if grpc_port == port:
            raise invalid_argument("--grpc-port must differ from --port (HTTP/1.1 and HTTP/2 are served apart)")
    return serve(
        settings,
        args.host,
        port,
        no_auth=args.no_auth,
        log_level=args.log_level,
        log_format=args.log_format,
        grpc_port=grpc_port,
    )
