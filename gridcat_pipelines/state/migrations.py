"""Versioned DDL from ``sql/<dialect>/NNNN_name.sql``, recorded in ``gridcat_schema_migrations``.

``upgrade`` applies what is missing, each file in its own transaction, under a lock so two
processes upgrading at once do not race; applying twice is a no-op. ``check_schema`` tells a
store opened on an older (or newer) schema what is wrong and how to fix it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gridcat_pipelines.errors import failed_precondition
from gridcat_pipelines.state.db import write_connection

MIGRATIONS_TABLE = "gridcat_schema_migrations"
SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_ADVISORY_LOCK_ID = 0x67726964  # "grid"


@dataclass(frozen=True)
class Migration:
    """One versioned DDL file."""

    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        """The file's text."""
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        """SHA-256 of the file, recorded when applied."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def dialect_dir(dialect: str) -> str:
    """The folder under ``sql/`` for a SQLAlchemy dialect name."""
    return {"sqlite": "sqlite", "postgresql": "postgresql"}[dialect]


def available_migrations(dialect: str, sql_dir: Path | None = None) -> list[Migration]:
    """The migrations shipped for ``dialect`` (in ``sql_dir``, default ``sql/``), in version order."""
    folder = (sql_dir or SQL_DIR) / dialect_dir(dialect)
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations in {folder} are not numbered 0001.. without gaps: {versions}")
    return found


def latest_version(dialect: str) -> int:
    """The schema version this code needs."""
    migrations = available_migrations(dialect)
    return migrations[-1].version if migrations else 0


def split_statements(sql: str) -> list[str]:
    """Statements of a migration file: separated by a ``;`` that ends a line."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in re.split(r";\s*(?:\n|$)", body) if part.strip()]


def _ensure_migrations_table(conn: Connection) -> None:
    ts_type = "TIMESTAMPTZ" if conn.dialect.name == "postgresql" else "TEXT"
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
        " version INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL,"
        " checksum TEXT NOT NULL,"
        f" applied_at {ts_type} NOT NULL)"
    )


def applied_migrations(engine: Engine) -> dict[int, str]:
    """``{version: checksum}`` of what ran on this database (empty for a new one)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(MIGRATIONS_TABLE):
            return {}
        rows = conn.exec_driver_sql(f"SELECT version, checksum FROM {MIGRATIONS_TABLE}").all()
    return {int(v): c for v, c in rows}


def current_version(engine: Engine) -> int:
    """The highest applied migration version (0 for a new database)."""
    applied = applied_migrations(engine)
    return max(applied) if applied else 0


def upgrade(engine: Engine, sql_dir: Path | None = None) -> list[Migration]:
    """Apply every missing migration; return the ones applied now (empty when up to date)."""
    dialect = engine.dialect.name
    applied_now: list[Migration] = []
    for migration in available_migrations(dialect, sql_dir):
        with write_connection(engine) as conn, conn.begin():
            if dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
            _ensure_migrations_table(conn)
            row = conn.exec_driver_sql(
                f"SELECT checksum FROM {MIGRATIONS_TABLE} WHERE version = {migration.version}"
            ).first()
            if row is not None:
                if row[0] != migration.checksum:
                    raise failed_precondition(
                        f"migration {migration.path.name} changed after it was applied "
                        "(checksum differs); ship schema changes as a new numbered file"
                    )
                continue
            for statement in split_statements(migration.sql):
                conn.exec_driver_sql(statement)
            conn.execute(
                sa.text(
                    f"INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum, applied_at) VALUES (:v, :n, :c, :t)"
                ),
                {
                    "v": migration.version,
                    "n": migration.name,
                    "c": migration.checksum,
                    "t": _now_for(dialect),
                },
            )
            applied_now.append(migration)
    _ensure_secret(engine)
    return applied_now


def _now_for(dialect: str):
    now = datetime.now(UTC)
    return now.isoformat() if dialect == "sqlite" else now


def _ensure_secret(engine: Engine) -> None:
    """Create the per-database secret that signs page tokens, once."""
    with write_connection(engine) as conn, conn.begin():
        exists = conn.exec_driver_sql("SELECT 1 FROM gridcat_meta WHERE name = 'page_token_secret'").first()
        if exists is None:
            conn.execute(
                sa.text("INSERT INTO gridcat_meta (name, value) VALUES ('page_token_secret', :v)"),
                {"v": secrets.token_hex(32)},
            )


def check_schema(engine: Engine) -> None:
    """Raise ``FAILED_PRECONDITION`` unless the database is at exactly this code's schema version."""
    have = current_version(engine)
    want = latest_version(engine.dialect.name)
    url = engine.url.render_as_string(hide_password=True)
    if have < want:
        what = "has no gridcat schema" if have == 0 else f"is at schema version {have}"
        raise failed_precondition(
            f"state store {url} {what}; this gridcat needs version {want}. "
            "Run `gridcat db upgrade` (same GRIDCAT_DB_URL) to migrate it.",
            {"current_version": have, "required_version": want},
        )
    if have > want:
        raise failed_precondition(
            f"state store {url} is at schema version {have}, newer than this gridcat "
            f"understands ({want}); upgrade gridcat.",
            {"current_version": have, "required_version": want},
        )
