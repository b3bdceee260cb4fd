"""Which warehouse loads the change feed calls for (the gate's logic, without Dagster).

For the changes after a cursor, the latest change per partition is compared with the
partition's current state: a load is planned only when the state is ``success`` at that run
and version (so a run superseded or failed within the same batch is never loaded). The
``run_key`` carries the source, the run and the state version: a repeat is skipped by
Dagster, while a re-point back to a run loaded before gets a new version and loads again.
Work is proportional to the changes read, never to the table.

No row stops the gate: a change for a partition the pipeline does not have (another source,
an unknown feed or customer, a day outside the daily partitions) is reported and skipped, and
the cursor always moves past every change read.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from datetime import date

from gridcat_pipelines.state import DEFAULT_SOURCE, PartitionKey, StateStore


@dataclass(frozen=True)
class PlannedLoad:
    """One warehouse load to request."""

    key: PartitionKey
    run_id: str
    version: int

    @property
    def run_key(self) -> str:
        """This load's part of Dagster's dedupe key: partition, run and state version."""
        k = self.key
        return f"{k.source}:{k.query_name}:{k.customer_id}:{k.logical_date.isoformat()}:{self.run_id}:v{self.version}"


@dataclass
class LoadPlan:
    """The loads to request, the cursor to resume from, and rows that were skipped (logged)."""

    loads: list[PlannedLoad] = field(default_factory=list)
    next_cursor: int = 0
    problems: list[str] = field(default_factory=list)


def plan_loads(
    store: StateStore,
    cursor: int,
    *,
    feeds: set[str],
    customers: Container[str],
    start_date: date,
    end_date: date,
    source: str = DEFAULT_SOURCE,
    limit: int = 1000,
) -> LoadPlan:
    """Loads for the changes after ``cursor`` (at most ``limit`` of them).

    A change for a partition the pipeline does not have (another source than ``source``, an
    unknown feed or customer, a day outside ``start_date``..``end_date``) is reported in
    ``problems`` and skipped; the cursor moves past it.
    """
    changes = store.changes_since(cursor, limit=limit)
    plan = LoadPlan(next_cursor=changes[-1].seq if changes else cursor)
    latest = {}
    for change in changes:
        key = change.key
        if not (
            key.source == source
            and key.query_name in feeds
            and key.customer_id in customers
            and start_date <= key.logical_date <= end_date
        ):
            plan.problems.append(f"change {change.seq}: {key} is not a partition of the pipeline; skipped")
            continue
        latest[key] = change
    if not latest:
        return plan
    states = store.get_many(latest)
    for key, change in latest.items():
        state = states[key]
        if state.status == "success" and state.current_run_id == change.run_id and state.version == change.version:
            plan.loads.append(PlannedLoad(key=key, run_id=change.run_id, version=change.version))
    return plan
