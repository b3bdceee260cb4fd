"""Find the ``success`` partitions whose warehouse slice is not their authoritative run, and why.

The gate requests a load when a state changes; a load that then fails (a transient warehouse
error, a killed run, a lease that could not be taken) would leave the partition ``stale``
until the state changed again. Reconcile closes that gap without a state change: it lists
every ``success`` partition of the pipeline whose load log (``warehouse_load``) does not show
its current run at its current version, and gives the reason:

- ``load_failed``: the last load failed (its error is kept);
- ``pending_load``: no load of this run and version has committed yet (requested, queued,
  skipped for a newer state, or never attempted).

``due`` partitions are those reconcile should ask for now: a failed load after its backoff, a
request that never turned into a load after its backoff, and a partition never attempted once
the gate had ``GATE_GRACE`` to load it. The daemon's reconcile sensor asks for those each
minute; ``gridcat warehouse reconcile`` asks for every stale partition at once (or loads them
in process with ``--run``). The log is a cache of the warehouse: a candidate whose slice
already holds the run is recorded as loaded instead of being reloaded.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from gridcat_pipelines.state import DEFAULT_SOURCE, PartitionKey, StateStore
from gridcat_pipelines.state.tables import KEY_COLUMNS, partition_state
from gridcat_pipelines.warehouse import load_log
from gridcat_pipelines.warehouse.parquet_target import LoadedSlice, WarehouseTarget
from gridcat_pipelines.warehouse.slices import loaded_slices_of
from gridcat_pipelines.warehouse.tables import warehouse_load

LOAD_FAILED = "load_failed"
PENDING_LOAD = "pending_load"
GATE_GRACE = timedelta(minutes=2)
CHUNK = 500  # candidates whose slices are read together (per feed: one Iceberg metadata read, one PostgreSQL query)


@dataclass(frozen=True)
class StalePartition:
    """A ``success`` partition whose authoritative run is not (known to be) in the warehouse."""

    key: PartitionKey
    run_id: str
    version: int
    reason: str
    error: str | None
    due: bool

    def to_json(self) -> dict[str, Any]:
        """``{"customer_id", "query_name", "logical_date", "authoritative_run_id", "reason", ...}``."""
        out = {
            "customer_id": self.key.customer_id,
            "query_name": self.key.query_name,
            "logical_date": self.key.logical_date.isoformat(),
            "authoritative_run_id": self.run_id,
            "state_version": self.version,
            "reason": self.reason,
        }
        if self.error:
            out["error"] = self.error
        return out


def find_stale(
    store: StateStore,
    *,
    feeds: Iterable[str],
    customers: Container[str] | Iterable[str] | None,
    start_date: date,
    end_date: date,
    now: datetime,
    source: str = DEFAULT_SOURCE,
    warehouse: WarehouseTarget | None = None,
    limit: int | None = None,
) -> list[StalePartition]:
    """The pipeline's stale ``success`` partitions in key order (at most ``limit``).

    With ``warehouse``, each candidate's slice is read (``CHUNK`` candidates at a time): one
    that already holds the run (the log lagged the warehouse) is recorded as loaded and left
    out."""
    s, w = partition_state, warehouse_load
    join = sa.and_(*[s.c[c] == w.c[c] for c in KEY_COLUMNS])
    query = (
        sa.select(
            *[s.c[c] for c in KEY_COLUMNS],
            s.c.current_run_id,
            s.c.version,
            s.c.updated_at,
            w.c.last_outcome,
            w.c.last_error,
            w.c.due_at,
            w.c.loaded_run_id,
        )
        .select_from(s.outerjoin(w, join))
        .where(
            s.c.status == "success",
            s.c.source == source,
            s.c.query_name.in_(sorted(set(feeds))),
            s.c.logical_date >= start_date,
            s.c.logical_date <= end_date,
            sa.or_(
                w.c.loaded_run_id.is_(None),
                w.c.loaded_run_id != s.c.current_run_id,
                w.c.loaded_version != s.c.version,
            ),
        )
        .order_by(*[s.c[c] for c in KEY_COLUMNS])
    )
    if customers is None or (isinstance(customers, Container) and not isinstance(customers, (list, tuple))):
        wanted = customers  # a set, or a container such as CustomersWithPartitions
    else:
        wanted = set(customers)
    found: list[StalePartition] = []
    with store.engine.connect() as conn:
        result = conn.execute(query)
        size = CHUNK if limit is None else max(1, min(CHUNK, limit))  # no more slice reads than needed
        while batch := result.fetchmany(size):
            rows = [row for row in batch if wanted is None or row.customer_id in wanted]
            keys = [PartitionKey(r.source, r.customer_id, r.query_name, r.logical_date) for r in rows]
            slices = loaded_slices_of(warehouse, keys) if warehouse is not None else {}
            for key, row in zip(keys, rows, strict=True):
                if key in slices and _already_loaded(store, slices[key], key, row, now):
                    continue
                found.append(_stale(key, row, now))
                if limit is not None and len(found) >= limit:
                    return found
    return found


def _stale(key: PartitionKey, row: Any, now: datetime) -> StalePartition:
    """The stale partition of one candidate row, with its reason and whether it is due."""
    failed = row.last_outcome == load_log.OUTCOME_FAILED
    if row.due_at is not None and row.last_outcome in (load_log.OUTCOME_FAILED, load_log.OUTCOME_REQUESTED):
        due = row.due_at <= now
    else:
        due = row.updated_at <= now - GATE_GRACE
    return StalePartition(
        key=key,
        run_id=row.current_run_id,
        version=row.version,
        reason=LOAD_FAILED if failed else PENDING_LOAD,
        error=row.last_error if failed else None,
        due=due,
    )


def _already_loaded(store: StateStore, loaded: LoadedSlice, key: PartitionKey, row: Any, now: datetime) -> bool:
    """Whether the slice holds the state's run at its version (then the log catches up)."""
    if loaded.run_id != row.current_run_id or loaded.state_version != row.version:
        return False
    with store.hold([key]) as held:  # record it only while the state still says so
        state = held.states[key]
        if state.status != "success" or state.current_run_id != loaded.run_id or state.version != row.version:
            return False
        load_log.record_loaded(held.conn, key, loaded.run_id, row.version, loaded.rows, now)
    return True


def reasons_for(store: StateStore, keys: Iterable[PartitionKey]) -> dict[PartitionKey, tuple[str, str | None]]:
    """``(reason, error)`` for partitions known to be stale (``warehouse status``)."""
    records = load_log.load_records(store.engine, keys)
    out = {}
    for key in keys:
        record = records.get(key)
        if record is not None and record.last_outcome == load_log.OUTCOME_FAILED:
            out[key] = (LOAD_FAILED, record.last_error)
        else:
            out[key] = (PENDING_LOAD, None)
    return out
