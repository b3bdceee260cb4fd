"""Per-dialect DDL for projection columns and their indexes, from validated identifiers only.

PostgreSQL
    ``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` (a catalog-only change for a nullable column
    without default) runs with a short ``lock_timeout`` and is retried with backoff, so a long
    transaction on ``partition_state`` makes promotion wait a little, not queue every writer
    behind its ACCESS EXCLUSIVE request. The index is built with ``CREATE INDEX CONCURRENTLY``
    in autocommit (outside any transaction; writers keep going). A failed concurrent build
    leaves an INVALID index (``pg_index.indisvalid = false``): it is detected, dropped
    (``DROP INDEX CONCURRENTLY``) and rebuilt.
SQLite
    ``ADD COLUMN`` and ``CREATE INDEX IF NOT EXISTS`` inside one write transaction.

Indexes are ``(column, <primary key>)`` so an equality filter returns rows in key order and a
page token resumes with an index range scan.
"""

from __future__ import annotations

import random
import time

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gridcat_pipelines.errors import UNAVAILABLE, GridcatError
from gridcat_pipelines.state.db import write_connection
from gridcat_pipelines.state.tables import KEY_COLUMNS
from gridcat_pipelines.tag_facets.identifiers import parse_column_name, quote

TABLE = "partition_state"
LOCK_TIMEOUT_MS = 2000
DDL_ATTEMPTS = 6


def state_columns(conn: Connection) -> set[str]:
    """Names of the columns ``partition_state`` has now."""
    return {c["name"] for c in sa.inspect(conn).get_columns(TABLE)}


def _is_lock_timeout(exc: sa.exc.DBAPIError) -> bool:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in ("55P03", "40P01")


def with_lock_retry(engine: Engine, work, *, attempts: int = DDL_ATTEMPTS, what: str = "DDL"):
    """Run ``work(conn)`` in a write transaction with a ``lock_timeout`` (PostgreSQL), retrying
    lock timeouts and deadlocks with backoff; ``UNAVAILABLE`` when every attempt timed out."""
    for attempt in range(attempts):
        try:
            with write_connection(engine) as conn, conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(LOCK_TIMEOUT_MS)}ms'")
                return work(conn)
        except sa.exc.DBAPIError as exc:
            if not _is_lock_timeout(exc):
                raise
            if attempt == attempts - 1:
                raise GridcatError(
                    UNAVAILABLE,
                    f"{what}: could not lock {TABLE} within {LOCK_TIMEOUT_MS} ms after {attempts} attempts",
                ) from exc
            time.sleep(random.uniform(0.05, 0.2) * (2**attempt))
    raise AssertionError("unreachable")


def add_column(engine: Engine, column: str) -> bool:
    """Add the TEXT projection column unless it exists; True when it was added now."""
    column = parse_column_name(column)

    def work(conn: Connection) -> bool:
        if column in state_columns(conn):
            return False
        conn.exec_driver_sql(f"ALTER TABLE {TABLE} ADD COLUMN {quote(conn, column)} TEXT")
        return True

    return with_lock_retry(engine, work, what=f"adding column {column}")


def _index_sql(conn: Connection, column: str, index: str, concurrently: bool) -> str:
    cols = ", ".join([quote(conn, column), *KEY_COLUMNS])
    how = "CONCURRENTLY " if concurrently else ""
    return f"CREATE INDEX {how}IF NOT EXISTS {quote(conn, index)} ON {TABLE} ({cols})"


def index_state(engine: Engine, index: str) -> str:
    """``missing``, ``valid`` or ``invalid`` (PostgreSQL: a failed concurrent build)."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            valid = conn.execute(
                sa.text(
                    "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "WHERE c.relname = :name AND c.relnamespace = current_schema()::regnamespace"
                ),
                {"name": index},
            ).scalar()
            return "missing" if valid is None else ("valid" if valid else "invalid")
        found = conn.execute(
            sa.text("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = :name"), {"name": index}
        ).first()
        return "valid" if found else "missing"


_INDEX_BUILD_LOCK_ID = 0x66696478  # "fidx"


BUILD_LOCK_WAIT_SECONDS = 900.0


def _take_build_lock(conn: Connection, column: str) -> None:
    """The session lock on facet index builds, polled with ``pg_try_advisory_lock``: a session
    blocked in ``pg_advisory_lock`` would itself be a transaction the running build waits for."""
    deadline = time.monotonic() + BUILD_LOCK_WAIT_SECONDS
    while not conn.execute(sa.text("SELECT pg_try_advisory_lock(:id)"), {"id": _INDEX_BUILD_LOCK_ID}).scalar():
        if time.monotonic() > deadline:
            raise GridcatError(
                UNAVAILABLE,
                f"indexing {column}: another facet index build held the lock for "
                f"{BUILD_LOCK_WAIT_SECONDS:.0f} s; retry later",
            )
        time.sleep(0.05)


def _build_concurrently(conn: Connection, engine: Engine, column: str, index: str) -> None:
    """CREATE INDEX CONCURRENTLY, dropping an INVALID leftover first; a build chosen as a
    deadlock victim (e.g. against a promotion's SHARE lock) is retried with backoff."""
    for attempt in range(DDL_ATTEMPTS):
        try:
            if index_state(engine, index) == "invalid":
                conn.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(conn, index)}")
            conn.exec_driver_sql(_index_sql(conn, column, index, concurrently=True))
            return
        except sa.exc.DBAPIError as exc:
            if not _is_lock_timeout(exc) or attempt == DDL_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.05, 0.2) * (2**attempt))


def ensure_index(engine: Engine, column: str, index: str) -> str:
    """Build the facet index if missing; rebuild it if a failed build left it INVALID.

    Returns ``created``, ``rebuilt`` or ``exists``.
    """
    column = parse_column_name(column)
    state = index_state(engine, index)
    if state == "valid":
        return "exists"
    if engine.dialect.name != "postgresql":

        def work(conn: Connection) -> None:
            conn.exec_driver_sql(_index_sql(conn, column, index, concurrently=False))

        with_lock_retry(engine, work, what=f"indexing {column}")
        return "created"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # One facet index build at a time: two concurrent builds on one table wait for each
        # other's snapshots and deadlock (PostgreSQL aborts one with 40P01).
        _take_build_lock(conn, column)
        try:
            _build_concurrently(conn, engine, column, index)
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": _INDEX_BUILD_LOCK_ID})
    if index_state(engine, index) != "valid":  # pragma: no cover - the build raised instead
        raise GridcatError(UNAVAILABLE, f"index {index} is still invalid after a rebuild")
    return "rebuilt" if state == "invalid" else "created"
