"""The warehouse load log in the state database: per partition, what the loader last committed
(run, state version, rows) and how loads went since (failures, requests, the last error).

The loaded run and version are written in the transaction that holds the partition's state
still while the warehouse commits (``loader``), so the log never claims a load the state did
not allow; a loader killed between the warehouse commit and that transaction's end leaves the
log behind the warehouse, which only makes reconcile load the partition again (harmless: the
reload is fenced and idempotent). Failures are counted in their own small transactions.

``due_at`` is when reconcile may ask for the partition again: a failed load backs off
(:func:`backoff`: 30 s, doubling, at most 30 minutes), and so does a request that has not
turned into a load yet; an operator's ``gridcat warehouse reconcile`` makes it due at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gridcat_pipelines.state import PartitionKey
from gridcat_pipelines.state.db import dialect_insert, write_connection
from gridcat_pipelines.state.tables import KEY_COLUMNS
from gridcat_pipelines.warehouse.tables import warehouse_load

OUTCOME_LOADED = "loaded"
OUTCOME_FAILED = "failed"
OUTCOME_REQUESTED = "requested"
MAX_ERROR_CHARS = 2000
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(minutes=30)


def backoff(attempts: int) -> timedelta:
    """How long to wait after ``attempts`` failed loads or unanswered requests: 30 s, 1 min,
    2 min, ... at most 30 minutes."""
    return min(BACKOFF_FIRST * (2 ** max(attempts - 1, 0)), BACKOFF_MAX) if attempts < 32 else BACKOFF_MAX


@dataclass(frozen=True)
class LoadRecord:
    """One partition's row of the load log."""

    key: PartitionKey
    loaded_run_id: str | None
    loaded_version: int | None
    loaded_rows: int | None
    loaded_at: datetime | None
    last_outcome: str
    last_error: str | None
    failures: int
    requests: int
    due_at: datetime | None
    updated_at: datetime


def _key_row(key: PartitionKey) -> dict:
    return dict(zip(KEY_COLUMNS, key.as_tuple()))


def _upsert(conn: Connection, key: PartitionKey, values: dict, on_conflict: dict) -> None:
    stmt = dialect_insert(conn.dialect.name, warehouse_load).values(**_key_row(key), **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=list(KEY_COLUMNS), set_=on_conflict))


def record_loaded(conn: Connection, key: PartitionKey, run_id: str, version: int, rows: int, now: datetime) -> None:
    """The loader committed ``run_id`` at state ``version`` (call it inside the held transaction)."""
    values = {
        "loaded_run_id": run_id,
        "loaded_version": version,
        "loaded_rows": rows,
        "loaded_at": now,
        "last_outcome": OUTCOME_LOADED,
        "last_error": None,
        "failures": 0,
        "requests": 0,
        "due_at": None,
        "updated_at": now,
    }
    _upsert(conn, key, values, values)


def record_failed(engine: Engine, key: PartitionKey, error: str, now: datetime) -> None:
    """A load failed: count it, keep ``error``, make the partition due again after the backoff
    (what was loaded before stays recorded)."""
    error = error[:MAX_ERROR_CHARS]
    with write_connection(engine) as conn, conn.begin():
        row = conn.execute(sa.select(warehouse_load.c.failures).where(*_key_equals(key))).first()
        failures = (row.failures if row is not None else 0) + 1
        values = {
            "last_outcome": OUTCOME_FAILED,
            "last_error": error,
            "failures": failures,
            "due_at": now + backoff(failures),
            "updated_at": now,
        }
        _upsert(conn, key, {**values, "requests": 0}, values)


def record_requested(engine: Engine, keys: Sequence[PartitionKey], now: datetime, *, due_now: bool = False) -> None:
    """Reconcile asked for loads of ``keys``: counted, and due again after the backoff (a load
    that never ran is asked for again); with ``due_now`` (an operator's request) due at once."""
    if not keys:
        return
    t = warehouse_load
    with write_connection(engine) as conn, conn.begin():
        found = {
            record_from_row(r).key: r.requests
            for start in range(0, len(keys), 500)
            for r in conn.execute(sa.select(t).where(_keys_in(keys[start : start + 500])))
        }
        for key in keys:
            requests = found.get(key, 0) + 1
            values = {
                "last_outcome": OUTCOME_REQUESTED,
                "requests": requests,
                "due_at": now if due_now else now + backoff(requests),
                "updated_at": now,
            }
            _upsert(conn, key, {**values, "failures": 0}, values)


def _key_equals(key: PartitionKey) -> list:
    return [warehouse_load.c[c] == v for c, v in zip(KEY_COLUMNS, key.as_tuple())]


def _keys_in(keys: Sequence[PartitionKey]):
    return sa.tuple_(*[warehouse_load.c[c] for c in KEY_COLUMNS]).in_([k.as_tuple() for k in keys])


def load_records(engine: Engine, keys: Iterable[PartitionKey]) -> dict[PartitionKey, LoadRecord]:
    """The load log rows of ``keys`` that have one."""
    wanted = list(dict.fromkeys(keys))
    found: dict[PartitionKey, LoadRecord] = {}
    t = warehouse_load
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            query = sa.select(t).where(_keys_in(chunk))
            for row in conn.execute(query):
                record = record_from_row(row)
                found[record.key] = record
    return found


def record_from_row(row) -> LoadRecord:
    """A :class:`LoadRecord` from a ``warehouse_load`` row."""
    return LoadRecord(
        key=PartitionKey(row.source, row.customer_id, row.query_name, row.logical_date),
        loaded_run_id=row.loaded_run_id,
        loaded_version=row.loaded_version,
        loaded_rows=row.loaded_rows,
        loaded_at=row.loaded_at,
        last_outcome=row.last_outcome,
        last_error=row.last_error,
        failures=row.failures,
        requests=row.requests,
        due_at=row.due_at,
        updated_at=row.updated_at,
    )
