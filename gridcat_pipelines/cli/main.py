"""Entry point of the ``gridcat`` command: parses arguments and turns errors into coded output.

Exit status: 0 on success, 1 on a gridcat error (a JSON ``{"code", "message", "details"}``
line is the last line on stderr), 2 for unknown commands or flags (argparse).
"""

from __future__ import annotations

import argparse
import sys

from gridcat_pipelines.cli import (
    catalog_commands,
    customers_commands,
    db_commands,
    demo_command,
    facet_commands,
    lease_commands,
    pipeline_commands,
    serve_command,
    state_commands,
)
from gridcat_pipelines.cli.output import print_error, quiet_dagster_warnings
from gridcat_pipelines.config import Settings
from gridcat_pipelines.errors import INTERNAL, UNAVAILABLE, GridcatError


def build_parser() -> argparse.ArgumentParser:
    """The full ``gridcat`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="gridcat",
        description="Partition state for Google Ads reports: which raw run is safe to consume.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    db_commands.register(commands)
    state_commands.register(commands)
    facet_commands.register(commands)
    catalog_commands.register(commands)
    pipeline_commands.register(commands)
    lease_commands.register(commands)
    demo_command.register(commands)
    serve_command.register(commands)
    customers_commands.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``gridcat`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "verbose", 0):
        quiet_dagster_warnings()
    try:  # a bad setting (GRIDCAT_SOURCE, GRIDCAT_WAREHOUSE, ...) is a coded error too
        return int(args.handler(args, Settings.from_env()) or 0)
    except GridcatError as error:
        print_error(error)
        return 1
    except KeyboardInterrupt:
        print_error(GridcatError(UNAVAILABLE, "interrupted"))
        return 130
    except Exception as exc:  # an operational failure (database down, disk full): say so, coded
        from sqlalchemy.exc import OperationalError

        code = UNAVAILABLE if isinstance(exc, OperationalError) else INTERNAL
        print_error(GridcatError(code, f"{type(exc).__name__}: {exc}".splitlines()[0]))
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
