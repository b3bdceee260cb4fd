"""Load exactly the authoritative run of a partition into the warehouse (seed 002's consumer
contract): only ``status=success`` at ``current_run_id``, re-checked when the load starts."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from gridcat_pipelines.errors import FAILED_PRECONDITION, GridcatError, failed_precondition
from gridcat_pipelines.leases.store import LeaseStore
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.state import PartitionKey, StateStore
from gridcat_pipelines.warehouse.parquet_target import LoadedSlice, WarehouseTarget

LOADED = "loaded"
SKIPPED_NOT_AUTHORITATIVE = "skipped_not_authoritative"


@dataclass(frozen=True)
class LoadOutcome:
    """What a load did: ``loaded`` (with the slice) or ``skipped_not_authoritative`` (why)."""

    status: str
    run_id: str
    message: str
    slice: LoadedSlice | None = None


def load_partition(
    store: StateStore,
    sink: RawSink,
    warehouse: WarehouseTarget,
    key: PartitionKey,
    run_id: str | None = None,
    *,
    leases: LeaseStore | None = None,
    lease_ttl_seconds: float = 600,
) -> LoadOutcome:
    """Replace the partition's warehouse slice with run ``run_id`` (default: the authoritative one).

    A run that is no longer the authoritative success run is skipped (the warehouse is left
    as it was); a raw run that is missing or incomplete raises ``FAILED_PRECONDITION`` and
    the warehouse is left as it was. With ``leases``, a lease pins the run while it is read,
    so retention cannot delete it underneath the load.
    """
    state = store.get(key)
    wanted = run_id or state.current_run_id
    if state.status != "success" or state.current_run_id != wanted or wanted is None:
        return LoadOutcome(
            SKIPPED_NOT_AUTHORITATIVE,
            wanted or "",
            f"{key}: run {wanted} is not the authoritative success run "
            f"(state {state.status} at {state.current_run_id}, version {state.version}); not loaded",
        )
    lease = None
    if leases is not None:
        try:
            lease = leases.begin([key], ttl_seconds=lease_ttl_seconds, holder="warehouse-loader",
                                 expected_runs={key: wanted})
        except GridcatError as exc:
            if exc.code != FAILED_PRECONDITION:
                raise
            return LoadOutcome(SKIPPED_NOT_AUTHORITATIVE, wanted, f"{key}: {exc.message}; not loaded")
    try:
        try:
            metadata = sink.read_metadata(key, wanted)
            table = sink.read_table(metadata)
        except (GridcatError, OSError, pa.ArrowException) as exc:  # missing/incomplete/unreadable run
            message = getattr(exc, "message", str(exc))
            raise failed_precondition(f"{key}: cannot read authoritative run {wanted}: {message}") from exc
        loaded = warehouse.replace_slice(key.query_name, key.customer_id, key.logical_date, table, wanted)
    except BaseException:
        if lease is not None:
            leases.end(lease.lease_id, abort=True)
        raise
    if lease is not None:
        leases.end(lease.lease_id)
    return LoadOutcome(LOADED, wanted, f"{key}: loaded {loaded.rows} rows of run {wanted}", loaded)
