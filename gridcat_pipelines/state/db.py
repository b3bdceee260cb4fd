"""Engines for the state store: SQLite (embedded default) and PostgreSQL (psycopg 3).

SQLite runs in WAL mode with a busy timeout, and write transactions start with
``BEGIN IMMEDIATE`` so two writers queue instead of failing on a lock upgrade.

PostgreSQL connections are checked on checkout only when there is a reason to doubt them
(:func:`_ping_when_in_doubt`), not with a round trip on every checkout (``pool_pre_ping``).
"""

from __future__ import annotations

import select
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine

from gridcat_pipelines.errors import invalid_argument

WRITE_OPTION = "gridcat_write"
PING_AFTER_IDLE_S = 10.0  # a pooled PostgreSQL connection idle longer is pinged on checkout
RECYCLE_AFTER_S = 1800  # and one older than this is replaced


def normalize_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs; leave others as they are."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def create_state_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine for ``url`` (SQLite or PostgreSQL) configured for the state store."""
    url = normalize_url(url)
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise invalid_argument(f"state store URL {url!r} is not a database URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise invalid_argument("PostgreSQL URLs use psycopg 3: postgresql+psycopg://...")
        # Batched key lookups join on unnest(array params): psycopg prepares a statement after
        # five runs and PostgreSQL then switches to a generic plan that does not know the array
        # sizes (measured: 20 ms -> 780 ms per 1,000 keys). Custom plans keep them index lookups.
        engine = sa.create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=RECYCLE_AFTER_S,
            connect_args={"options": "-c plan_cache_mode=force_custom_plan"},
        )
        _ping_when_in_doubt(engine)
        return engine
    raise invalid_argument(f"state store backend {backend!r} is not supported: use sqlite:/// or postgresql+psycopg://")


def _ping_when_in_doubt(engine: Engine) -> None:
    """Pessimistic disconnect handling at a fraction of ``pool_pre_ping``'s cost.

    A connection checked out again soon after its checkin whose socket has nothing to read
    is used as it is; one idle for over ``PING_AFTER_IDLE_S``, or whose socket is readable (a
    server that closed the connection or is terminating it has sent EOF or an error), gets a
    ``SELECT 1`` first, and is replaced (``DisconnectionError``, the pool retries) if that
    fails. A connection that breaks mid-use raises as before and makes the pool drop its
    connections; the state store retries such write transactions.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(_dbapi_connection, record):  # pragma: no cover - exercised by every test
        record.info.pop("gridcat_idle_since", None)

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection, record):
        if record is not None:
            record.info["gridcat_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection, record, _proxy):
        idle_since = record.info.get("gridcat_idle_since")
        fresh = idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S
        if fresh and not _socket_readable(dbapi_connection):
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise sa.exc.DisconnectionError(f"connection failed its check on checkout: {exc}") from exc


def _socket_readable(dbapi_connection) -> bool:
    """Whether an idle connection's socket has anything to read (then it is suspect)."""
    try:
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except Exception:  # closed or broken: let the ping decide
        return True
    return bool(readable)


def _sqlite_engine(parsed: sa.engine.URL) -> Engine:
    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised by every test
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection):
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def dialect_insert(dialect: str, table: sa.Table):
    """``INSERT INTO table`` with the dialect's ``ON CONFLICT`` clauses (PostgreSQL or SQLite)."""
    return (pg_dialect.insert if dialect == "postgresql" else sqlite_dialect.insert)(table)


def write_connection(engine: Engine) -> Connection:
    """A connection whose transactions take the write lock up front on SQLite."""
    return engine.connect().execution_options(**{WRITE_OPTION: True})
