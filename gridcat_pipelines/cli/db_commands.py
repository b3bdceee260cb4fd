"""``gridcat db upgrade``: apply the versioned DDL under ``sql/`` to the state store."""

from __future__ import annotations

import argparse

from gridcat_pipelines.cli.output import print_json
from gridcat_pipelines.config import Settings
from gridcat_pipelines.state import migrations
from gridcat_pipelines.state.db import create_state_engine


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``db`` command group."""
    db = commands.add_parser("db", help="state store schema")
    sub = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    up = sub.add_parser(
        "upgrade",
        help="apply missing migrations (idempotent)",
        description="Apply every migration in sql/<dialect>/ not yet recorded in "
        "gridcat_schema_migrations. Running it again changes nothing.",
    )
    up.add_argument("--json", action="store_true", help="print JSON")
    up.set_defaults(handler=upgrade)


def upgrade(args: argparse.Namespace, settings: Settings) -> int:
    """Apply missing migrations and report the schema version."""
    engine = create_state_engine(settings.db_url)
    try:
        applied = migrations.upgrade(engine)
        version = migrations.current_version(engine)
    finally:
        engine.dispose()
    url = engine.url.render_as_string(hide_password=True)
    if args.json:
        print_json({"database": url, "applied": [m.path.name for m in applied], "schema_version": version})
    elif applied:
        for m in applied:
            print(f"applied {m.path.name}")
        print(f"{url}: schema version {version}")
    else:
        print(f"{url}: already at schema version {version}; nothing to do")
    return 0
