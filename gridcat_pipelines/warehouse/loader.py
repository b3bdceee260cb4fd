"""Load exactly the authoritative run of a partition into the warehouse (seed 002's consumer
contract): only ``status=success`` at ``current_run_id``, re-checked when the load starts."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from gridcat_pipelines.errors import GridcatError, failed_precondition
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.state import PartitionKey, StateStore
from gridcat_pipelines.warehouse.parquet_target import LoadedSlice, ParquetWarehouse

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
    warehouse: ParquetWarehouse,
    key: PartitionKey,
    run_id: str | None = None,
) -> LoadOutcome:
    """Replace the partition's warehouse slice with run ``run_id`` (default: the authoritative one).

    A run that is no longer the authoritative success run is skipped (the warehouse is left
    as it was); a raw run that is missing or incomplete raises ``FAILED_PRECONDITION`` and
    the warehouse is left as it was.
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
    try:
        metadata = sink.read_metadata(key, wanted)
        table = sink.read_table(metadata)
    except (GridcatError, OSError, pa.ArrowException) as exc:  # missing/incomplete/unreadable run
        message = getattr(exc, "message", str(exc))
        raise failed_precondition(f"{key}: cannot read authoritative run {wanted}: {message}") from exc
    loaded = warehouse.replace_slice(key.query_name, key.customer_id, key.logical_date, table, wanted)
    return LoadOutcome(LOADED, wanted, f"{key}: loaded {loaded.rows} rows of run {wanted}", loaded)
