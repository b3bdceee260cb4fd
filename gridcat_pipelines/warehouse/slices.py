"""What the warehouse holds for many partitions at once."""

from __future__ import annotations

from collections.abc import Iterable

from gridcat_pipelines.state import PartitionKey
from gridcat_pipelines.warehouse.parquet_target import LoadedSlice, WarehouseTarget


def loaded_slices_of(warehouse: WarehouseTarget, keys: Iterable[PartitionKey]) -> dict[PartitionKey, LoadedSlice]:
    """The loaded slice of each partition that has one. A target that can read many partitions
    at once per feed does (``loaded_slices``: one metadata read on Iceberg, one query on
    PostgreSQL); the Parquet target answers one ``loaded_slice`` each (a file footer)."""
    keys = list(keys)
    many = getattr(warehouse, "loaded_slices", None)
    if many is None:
        out = {}
        for key in keys:
            loaded = warehouse.loaded_slice(key.query_name, key.customer_id, key.logical_date)
            if loaded is not None:
                out[key] = loaded
        return out
    by_feed: dict[str, dict[tuple[str, object], PartitionKey]] = {}
    for key in keys:
        by_feed.setdefault(key.query_name, {})[(key.customer_id, key.logical_date)] = key
    out = {}
    for feed, wanted in by_feed.items():
        for partition, loaded in many(feed, list(wanted)).items():
            out[wanted[partition]] = loaded
    return out
