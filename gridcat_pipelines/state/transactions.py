"""Write transactions of the store: run whole, retried on races and lost connections, with
psycopg errors of the pipelined path raised as SQLAlchemy's."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gridcat_pipelines.state.db import write_connection

MAX_ATTEMPTS = 8

T = TypeVar("T")


def in_write_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    """``work(conn)`` in a write transaction that commits when it returns; the whole transaction
    is run again (after a short random backoff) when it fails in a retryable way, at most
    ``MAX_ATTEMPTS`` times."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            with write_connection(engine) as conn, conn.begin():
                return work(conn)
        except sa.exc.DBAPIError as exc:
            if not is_retryable(exc) or attempt == MAX_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0, 0.005 * (2**attempt)))
    raise AssertionError("unreachable")


def is_retryable(exc: sa.exc.DBAPIError) -> bool:
    """Unique-key races, deadlocks, serialization failures and lost connections: safe to retry
    the whole transaction (after a connection lost during COMMIT, the retry of a committed
    write is a replay: it changes nothing and says ``replayed``)."""
    if isinstance(exc, sa.exc.IntegrityError) or exc.connection_invalidated:
        return True
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in ("40001", "40P01")


@contextmanager
def as_sqlalchemy_errors(conn: Connection) -> Iterator[None]:
    """psycopg errors from statements run on the driver connection (``pg_write``) as the
    SQLAlchemy errors ``conn.execute`` raises, so retries and callers treat them alike; a
    connection the error broke is invalidated."""
    try:
        yield
    except psycopg.Error as exc:
        broken = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)
        if broken:
            conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            "(pipelined write)", None, exc, psycopg.Error, connection_invalidated=broken, dialect=conn.dialect
        ) from exc
