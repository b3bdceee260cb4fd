"""Load exactly the authoritative run of a partition into the warehouse (the state-store contract's consumer
contract), with a fenced commit.

A load is planned at a state ``(success, run, version)``. It pins the run with a lease (kept
alive while the run is read), stages the slice in the target without making it visible, then
holds the partition's state still (``StateStore.hold``) and, only if the state is still
``success`` at that run and version, commits the slice, which records the version it holds
(a target never replaces a slice of a higher version), and logs the load in the same held
transaction. No state change of the partition can commit between that check and the warehouse
commit, so whatever the interleaving of loaders, re-points and new results, a committed slice
is the authoritative run of the moment it committed, and the newest state version's load is
the one that stays. A load fenced out ends ``skipped_superseded``; a load that fails is logged
(``warehouse_load``) and raised, and reconcile retries it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from gridcat_pipelines.errors import FAILED_PRECONDITION, GridcatError, failed_precondition
from gridcat_pipelines.leases.store import LeaseStore
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.state import PartitionKey, PartitionState, StateStore
from gridcat_pipelines.warehouse import load_log
from gridcat_pipelines.warehouse.parquet_target import LoadedSlice, StagedSlice, WarehouseTarget

LOADED = "loaded"
SKIPPED_SUPERSEDED = "skipped_superseded"


@dataclass(frozen=True)
class LoadOutcome:
    """What a load did: ``loaded`` (with the slice) or ``skipped_superseded`` (why)."""

    status: str
    run_id: str
    message: str
    slice: LoadedSlice | None = None
    state_version: int | None = None


def _authoritative(state: PartitionState, run_id: str | None, version: int | None) -> bool:
    return (
        state.status == "success"
        and run_id is not None
        and state.current_run_id == run_id
        and (version is None or state.version == version)
    )


def _now() -> datetime:
    return datetime.now(UTC)


def load_partition(
    store: StateStore,
    sink: RawSink,
    warehouse: WarehouseTarget,
    key: PartitionKey,
    run_id: str | None = None,
    *,
    version: int | None = None,
    leases: LeaseStore | None = None,
    lease_ttl_seconds: float = 600,
    before_commit: Callable[[], None] | None = None,
) -> LoadOutcome:
    """Replace the partition's warehouse slice with run ``run_id`` (default: the authoritative
    one) planned at state ``version`` (default: the version read when the load starts).

    The slice is committed only if, at commit time, the run is still the partition's
    authoritative ``success`` run at that version; otherwise the warehouse keeps what it had and
    the outcome is ``skipped_superseded``. A raw run that is missing or unreadable raises
    ``FAILED_PRECONDITION``; any failure is logged in the load log and raised, the warehouse
    left as it was. With ``leases``, a lease pins the run while it is read and is renewed
    while the read lasts, so retention cannot delete it underneath the load.
    ``before_commit`` (tests and the chaos bench) runs after staging, before the fenced commit.
    """
    state = store.get(key)
    wanted = run_id or state.current_run_id
    planned = state.version if version is None else version
    if not _authoritative(state, wanted, planned):
        return _skipped(store, key, wanted, planned, state)
    try:
        if leases is None:
            return _stage_and_commit(store, sink, warehouse, key, wanted, planned, before_commit)
        try:
            lease = leases.begin(
                [key], ttl_seconds=lease_ttl_seconds, holder="warehouse-loader", expected_runs={key: wanted}
            )
        except GridcatError as exc:
            if exc.code != FAILED_PRECONDITION:
                raise
            return _skipped(store, key, wanted, planned, store.get(key))
        with leases.kept(lease, ttl_seconds=lease_ttl_seconds):
            return _stage_and_commit(store, sink, warehouse, key, wanted, planned, before_commit)
    except Exception as exc:
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        try:
            load_log.record_failed(store.engine, key, message, _now())
        except Exception:  # noqa: BLE001 - the database may be what failed; the load error is what matters
            pass
        raise


def _skipped(
    store: StateStore, key: PartitionKey, run_id: str | None, version: int, state: PartitionState
) -> LoadOutcome:
    return LoadOutcome(
        SKIPPED_SUPERSEDED,
        run_id or "",
        f"{key}: skipped: superseded: run {run_id} at version {version} is not the authoritative success run "
        f"(state {state.status} at {state.current_run_id}, version {state.version}); not loaded",
        state_version=version,
    )


def _stage_and_commit(
    store: StateStore,
    sink: RawSink,
    warehouse: WarehouseTarget,
    key: PartitionKey,
    run_id: str,
    version: int,
    before_commit: Callable[[], None] | None,
) -> LoadOutcome:
    try:
        metadata = sink.read_metadata(key, run_id)
        table = sink.read_table(metadata)
    except (GridcatError, OSError, pa.ArrowException) as exc:  # missing/incomplete/unreadable run
        message = getattr(exc, "message", str(exc))
        raise failed_precondition(f"{key}: cannot read authoritative run {run_id}: {message}") from exc
    staged: StagedSlice = warehouse.stage_slice(
        key.query_name, key.customer_id, key.logical_date, table, run_id, version
    )
    try:
        if before_commit is not None:
            before_commit()
        with store.hold([key]) as held:
            current = held.states[key]
            if not _authoritative(current, run_id, version):
                staged.abort()
                return _skipped(store, key, run_id, version, current)
            loaded = staged.commit()
            if loaded is None:  # the slice already holds a newer version
                return _skipped(store, key, run_id, version, current)
            load_log.record_loaded(held.conn, key, run_id, version, loaded.rows, _now())
    except BaseException:
        staged.abort()
        raise
    return LoadOutcome(
        LOADED,
        run_id,
        f"{key}: loaded {loaded.rows} rows of run {run_id} (state version {version})",
        loaded,
        state_version=version,
    )
