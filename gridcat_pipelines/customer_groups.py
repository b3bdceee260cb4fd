"""Customer groups: what one key of the Dagster ``customer`` partition dimension holds.

Up to ``shard_above`` configured customers, each customer is its own group and the key is its
customer id (one partition per customer and day, the finest view in the Dagster UI). Past that,
customers are hashed into ``shards`` groups keyed ``shard-000`` .. ``shard-NNN``: a customer's
shard is ``crc32(customer_id) % shards``, so it never depends on which other customers exist
and adding accounts never moves one. The partition state stays per customer either way; a
group is only how Dagster partitions, runs and reports the work.

Why: daily x customer partitions pass Dagster's recommended 100,000 partitions per asset at
about 90 customers over 3 years; 16 shards stay at 17,500 for 3 years whatever the number of
accounts. Fewer, fuller partitions are also cheaper: Dagster writes its events (a materialization
and a check evaluation per rule) per partition, at several milliseconds of CPU each, so a run's
cost follows the partitions it touches more than its customers (measured in the README, "Scale").
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

SHARD_PREFIX = "shard-"


def shard_key(index: int) -> str:
    """The group key of shard ``index`` (``shard-007``)."""
    return f"{SHARD_PREFIX}{index:03d}"


def shard_of(customer_id: str, shards: int) -> str:
    """The shard of ``customer_id`` among ``shards`` (stable: crc32 of the id)."""
    return shard_key(zlib.crc32(customer_id.encode()) % shards)


@dataclass(frozen=True)
class CustomerGroups:
    """The grouping of the configured customers into partition keys."""

    customer_ids: tuple[str, ...]
    shard_above: int = 100
    shards: int = 16

    @classmethod
    def of(cls, customer_ids: Iterable[str], *, shard_above: int = 100, shards: int = 16) -> CustomerGroups:
        """The groups of ``customer_ids`` under the given sharding settings."""
        return cls(tuple(sorted(set(customer_ids))), shard_above, shards)

    @property
    def sharded(self) -> bool:
        """Whether customers are grouped into shards (more than ``shard_above`` customers)."""
        return len(self.customer_ids) > self.shard_above

    def group_of(self, customer_id: str) -> str:
        """The partition key holding ``customer_id``: its shard, or the id itself."""
        return shard_of(customer_id, self.shards) if self.sharded else customer_id

    def keys(self) -> list[str]:
        """Every group key, sorted (the shards that hold at least one customer, or the ids)."""
        return sorted({self.group_of(c) for c in self.customer_ids})

    def members(self, group: str) -> list[str]:
        """The customers in ``group``, sorted: the configured customers of a shard, or the
        customer a customer-id key names (configured or not: a partition from before sharding,
        or of a customer since removed from the config, still names its customer)."""
        if group.startswith(SHARD_PREFIX):
            return [c for c in self.customer_ids if self.group_of(c) == group] if self.sharded else []
        return [group]

    def has_partition(self, partitions: Iterable[str]) -> CustomersWithPartitions:
        """The customers (configured or not) whose group is one of ``partitions``."""
        return CustomersWithPartitions(self, frozenset(partitions))

    def by_group(self, customer_ids: Iterable[str]) -> dict[str, list[str]]:
        """``customer_ids`` grouped by their group key (keys and members sorted)."""
        groups: dict[str, list[str]] = {}
        for customer_id in sorted(set(customer_ids)):
            groups.setdefault(self.group_of(customer_id), []).append(customer_id)
        return dict(sorted(groups.items()))


@dataclass(frozen=True)
class CustomersWithPartitions:
    """``customer_id in this``: whether the customer's group has a partition (a container, not
    a list: it also holds customers that are no longer configured)."""

    groups: CustomerGroups
    partitions: frozenset[str]

    def __contains__(self, customer_id: object) -> bool:
        return isinstance(customer_id, str) and self.groups.group_of(customer_id) in self.partitions
