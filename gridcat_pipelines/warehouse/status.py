"""Is the warehouse in step with the state store? One word per partition.

- ``in_sync``: the state is ``success`` and the warehouse holds exactly its run;
- ``stale``: the state is ``success`` at a run the warehouse does not hold yet (an older run
  is loaded; the gate will reload it);
- ``held``: the state is not ``success`` but an earlier good slice stays in the warehouse;
- ``missing``: nothing is loaded for the partition.

A ``success`` partition that is ``stale`` or ``missing`` also gets a ``reason`` from the load
log: ``load_failed`` (with the ``error``) or ``pending_load`` (see ``reconcile``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from gridcat_pipelines.state import PartitionKey, PartitionState
from gridcat_pipelines.warehouse.parquet_target import LoadedSlice, WarehouseTarget
from gridcat_pipelines.warehouse.slices import loaded_slices_of

SYNC_WORDS = ("in_sync", "stale", "held", "missing")


def sync_word(state: PartitionState, loaded: LoadedSlice | None) -> str:
    """The sync word of one partition."""
    if loaded is None:
        return "missing"
    if state.status != "success":
        return "held"
    return "in_sync" if loaded.run_id == state.current_run_id else "stale"


def warehouse_status(
    states: Iterable[PartitionState],
    warehouse: WarehouseTarget,
    reasons: Callable[[list[PartitionKey]], dict[PartitionKey, tuple[str, str | None]]] | None = None,
) -> dict[str, Any]:
    """``{"partitions": [...], "summary": {...}}`` as ``gridcat warehouse status --json`` prints it;
    ``reasons`` (``reconcile.reasons_for``) explains the stale and missing success partitions."""
    partitions, behind = [], []
    states = list(states)
    slices = loaded_slices_of(warehouse, (state.key for state in states))
    for state in states:
        key = state.key
        loaded = slices.get(key)
        partitions.append(
            {
                "customer_id": key.customer_id,
                "query_name": key.query_name,
                "logical_date": key.logical_date.isoformat(),
                "status": state.status,
                "authoritative_run_id": state.current_run_id if state.status == "success" else None,
                "loaded_run_id": None if loaded is None else loaded.run_id,
                "loaded_rows": None if loaded is None else loaded.rows,
                "record_count": state.record_count,
                "sync": sync_word(state, loaded),
            }
        )
        if state.status == "success" and partitions[-1]["sync"] in ("stale", "missing"):
            behind.append((key, partitions[-1]))
    if reasons is not None and behind:
        found = reasons([key for key, _ in behind])
        for key, row in behind:
            reason, error = found[key]
            row["reason"] = reason
            if error:
                row["error"] = error
    counts = Counter(p["sync"] for p in partitions)
    return {"partitions": partitions, "summary": {word: counts.get(word, 0) for word in SYNC_WORDS}}
