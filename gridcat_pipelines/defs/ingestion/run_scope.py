"""Which customer-days one ingest or load run covers: its partitions (one key or a range of
customer group x day) narrowed by the run's tags.

- ``gridcat/customers``: comma-separated customer ids; only these (``gridcat pull``).
- ``gridcat/zones``: comma-separated IANA time zones; only customers in these (the daily
  schedule: the zones whose pull generation moved at that tick).

Without either tag a run covers every configured customer of its partitions' groups, so a run
or backfill launched from the Dagster UI does what its partitions say.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from gridcat_pipelines.customer_groups import CustomerGroups
from gridcat_pipelines.defs.ingestion.partitions import partition_dims
from gridcat_pipelines.feeds.models import PipelineConfig

CUSTOMERS_TAG = "gridcat/customers"
ZONES_TAG = "gridcat/zones"


def customer_groups(config: PipelineConfig) -> CustomerGroups:
    """The customer groups of ``config`` (its customers and sharding settings)."""
    return CustomerGroups.of(config.customers, shard_above=config.shard_above, shards=config.shards)


@dataclass(frozen=True)
class ScopedPartition:
    """One Dagster partition of a run and the customers the run covers in it."""

    partition_key: str
    group: str
    day: date
    customer_ids: tuple[str, ...]


def run_scope(config: PipelineConfig, partition_keys: Sequence[str], tags: Mapping[str, str]) -> list[ScopedPartition]:
    """The run's partitions with the customers it covers in each (partitions with none are kept,
    empty, so a caller can tell them apart from unknown groups)."""
    groups = customer_groups(config)
    only = _listed(tags.get(CUSTOMERS_TAG))
    zones = _listed(tags.get(ZONES_TAG))
    scoped = []
    for key in partition_keys:
        group, day = partition_dims(key)
        candidates = set(groups.members(group))
        if only is not None:  # listed customers of this group, configured or not
            candidates = {c for c in only if groups.group_of(c) == group or c == group}
        members = sorted(
            c for c in candidates if zones is None or (c in config.customers and config.customers[c].time_zone in zones)
        )
        scoped.append(ScopedPartition(str(key), group, day, tuple(members)))
    return scoped


def _listed(value: str | None) -> set[str] | None:
    """A comma-separated tag value as a set (``None`` when the tag is absent)."""
    if value is None:
        return None
    return {item.strip() for item in value.split(",") if item.strip()}


def request_scope(config: PipelineConfig, partitions_def, instance, request) -> list[ScopedPartition]:
    """The scope of a run request (``dg.RunRequest``): its partition or partition range, read
    with the instance's dynamic partitions, narrowed by its tags."""
    import dagster as dg

    key_range = request.partition_key_range
    if key_range is None:
        keys = [request.partition_key]
    else:
        with dg.partition_loading_context(dynamic_partitions_store=instance):
            keys = partitions_def.get_partition_keys_in_range(key_range)
    return run_scope(config, [str(k) for k in keys], request.tags)
