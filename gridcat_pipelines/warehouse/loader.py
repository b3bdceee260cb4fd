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
        _log_failure(store, key, exc)
        raise


def _log_failure(store: StateStore, key: PartitionKey, exc: Exception) -> None:
    """Record a failed load in the load log (reconcile retries it)."""
    message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
    try:
        load_log.record_failed(store.engine, key, message, _now())
    except Exception:  # noqa: BLE001 - the database may be what failed; the load error is what matters
        pass


def _read_run(sink: RawSink, key: PartitionKey, run_id: str) -> pa.Table:
    """The rows of raw run ``run_id`` (``FAILED_PRECONDITION`` when it is missing or unreadable)."""
    try:
        return sink.read_table(sink.read_metadata(key, run_id))
    except (GridcatError, OSError, pa.ArrowException) as exc:  # missing/incomplete/unreadable run
        message = getattr(exc, "message", str(exc))
        raise failed_precondition(f"{key}: cannot read authoritative run {run_id}: {message}") from exc


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
    table = _read_run(sink, key, run_id)
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


@dataclass(frozen=True)
class PlannedLoad:
    """One partition a load run should bring to ``run_id`` (``None``: the authoritative one)
    at state ``version`` (``None``: the version read when the load starts)."""

    key: PartitionKey
    run_id: str | None = None
    version: int | None = None


def load_partitions(
    store: StateStore,
    sink: RawSink,
    warehouse: WarehouseTarget,
    planned: list[PlannedLoad],
    *,
    leases: LeaseStore | None = None,
    lease_ttl_seconds: float = 600,
) -> list[LoadOutcome | Exception]:
    """Load many partitions of one feed; per partition, its outcome or the exception that
    failed it (logged in the load log like :func:`load_partition`'s).

    A target that can commit many slices at once (``stage_slices``: Iceberg, one commit per
    table instead of one per partition) gets them in one fenced commit: every partition is
    checked to be authoritative at its planned run and version with all of them held still,
    then the slices commit together and each load is logged in that held transaction. When a
    partition moved in between, or for any other target, each partition goes through
    :func:`load_partition` on its own, with the same fence."""
    if len(planned) > 1 and hasattr(warehouse, "stage_slices"):
        try:
            done = _load_together(store, sink, warehouse, planned, leases, lease_ttl_seconds)
        except GridcatError:
            done = None  # a run went missing, a partition moved, a bad slice: one at a time, each fenced
        if done is not None:
            return done
    outcomes: list[LoadOutcome | Exception] = []
    for load in planned:
        try:
            outcomes.append(
                load_partition(
                    store,
                    sink,
                    warehouse,
                    load.key,
                    load.run_id,
                    version=load.version,
                    leases=leases,
                    lease_ttl_seconds=lease_ttl_seconds,
                )
            )
        except Exception as exc:  # noqa: BLE001 - the others go on; load_partition logged it
            outcomes.append(exc)
    return outcomes


def _load_together(
    store: StateStore,
    sink: RawSink,
    warehouse: WarehouseTarget,
    planned: list[PlannedLoad],
    leases: LeaseStore | None,
    lease_ttl_seconds: float,
) -> list[LoadOutcome | Exception] | None:
    """The one-commit path of :func:`load_partitions`; ``None`` when it cannot hold (then each
    partition is loaded on its own)."""
    states = store.get_many([p.key for p in planned])
    wanted = []
    for load in planned:
        state = states[load.key]
        run_id = load.run_id or state.current_run_id
        version = state.version if load.version is None else load.version
        if not _authoritative(state, run_id, version):
            return None
        wanted.append((load.key, run_id, version))
    feeds = {key.query_name for key, _, _ in wanted}
    if len(feeds) != 1:
        return None
    lease = None
    if leases is not None:
        lease = leases.begin(
            [k for k, _, _ in wanted],
            ttl_seconds=lease_ttl_seconds,
            holder="warehouse-loader",
            expected_runs={k: r for k, r, _ in wanted},
        )
    try:
        if lease is not None:
            with leases.kept(lease, ttl_seconds=lease_ttl_seconds):
                return _stage_and_commit_together(store, sink, warehouse, wanted)
        return _stage_and_commit_together(store, sink, warehouse, wanted)
    except GridcatError:
        raise
    except Exception as exc:
        for key, _, _ in wanted:
            _log_failure(store, key, exc)
        return [exc for _ in wanted]


def _stage_and_commit_together(
    store: StateStore, sink: RawSink, warehouse: WarehouseTarget, wanted: list[tuple[PartitionKey, str, int]]
) -> list[LoadOutcome | Exception] | None:
    slices = [(k.customer_id, k.logical_date, _read_run(sink, k, run_id), run_id, v) for k, run_id, v in wanted]
    staged = warehouse.stage_slices(wanted[0][0].query_name, slices)  # type: ignore[attr-defined]
    try:
        with store.hold([k for k, _, _ in wanted]) as held:
            if not all(_authoritative(held.states[k], r, v) for k, r, v in wanted):
                staged.abort()
                return None
            loaded = staged.commit()
            if loaded is None:  # a slice holds a newer version already: one at a time
                return None
            for (key, run_id, version), one in zip(wanted, loaded):
                load_log.record_loaded(held.conn, key, run_id, version, one.rows, _now())
    except BaseException:
        staged.abort()
        raise
    return [
        LoadOutcome(
            LOADED,
            run_id,
            f"{key}: loaded {one.rows} rows of run {run_id} (state version {version}; one commit with "
            f"{len(wanted)} partitions)",
            one,
            state_version=version,
        )
        for (key, run_id, version), one in zip(wanted, loaded)
    ]
