"""The daily pull, per account-local day: each customer's newest complete day plus a lookback
window (conversion lag), requested once per time zone per *pull generation*, packed into few
runs.

Google Ads reports ``segments.date`` in the account's time zone, so a customer's day is pulled
only once it ended there at least ``settle_hours`` ago (:mod:`gridcat_pipelines.pull_days`).
The schedule ticks hourly; at each tick a time zone's *generation* is the newest complete day
there (at most the newest daily partition, yesterday in UTC). It moves forward once a day, at a
different hour for each zone, and every customer of the zone has the same window (the
generation and ``lookback_days`` days before it).

At a tick, the zones whose generation is new are requested together: their customers, by
customer group (:mod:`gridcat_pipelines.customer_groups`), are packed into runs of at most
``customer_days_per_run`` customer-days, each run a partition range (consecutive groups x the
window's days) tagged with the zones it covers (``gridcat/zones``). So the runs of a day grow
with the accounts' customer-days, not with the number of accounts or partitions.

Dagster dedupes a schedule's ``run_key`` only within one tick, not across ticks, so the
schedule dedupes across ticks itself: every run it requests carries the tag
``gridcat/pull_generation.<generation>`` = the comma-separated zones it covers, and a tick
requests only the zones of the current generations that no run has been tagged with yet.
Later ticks of the same generation therefore request nothing; a tick missed while the daemon
was down is made up by the next one. A customer added to the config after its zone was
requested for the day is pulled from the zone's next generation (or now, with ``gridcat pull``
or a backfill). Runs launched otherwise (backfills, ``gridcat pull``) do not count.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION, last_partition_date, partition_key
from gridcat_pipelines.defs.ingestion.run_scope import ZONES_TAG, customer_groups
from gridcat_pipelines.feeds.models import PipelineConfig
from gridcat_pipelines.pull_days import complete_days, pull_generation

DAILY_PULL_SCHEDULE_NAME = "google_ads_daily_pull"
DAILY_PULL_CRON = "0 * * * *"  # hourly: each account's day is requested within an hour of settling
PULL_GENERATION_TAG = "gridcat/pull_generation"
_UNKNOWN_SAMPLE = 20
# The run tags that make a run target a partition range (what Dagster's backfills set;
# RunRequest.partition_key_range reads them back).
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


def generation_tag_key(generation: date) -> str:
    """The run tag key marking the runs of one pull generation (value ``<customer>|<day>``)."""
    return f"{PULL_GENERATION_TAG}.{generation.isoformat()}"


def _requested(instance: dg.DagsterInstance, generation: date) -> set[str]:
    """The time zones already requested for ``generation`` (one indexed query)."""
    found = instance.get_run_tags(tag_keys=[generation_tag_key(generation)])
    values = set().union(*(values for _, values in found))
    return {zone for value in values for zone in value.split(",") if zone}


@dataclass(frozen=True)
class PlannedRun:
    """One run the schedule asks for: a partition range, the zones it covers."""

    first_group: str
    last_group: str
    days: tuple[date, ...]
    zones: tuple[str, ...]
    generation: date
    customer_days: int

    def request(self, index: int) -> dg.RunRequest:
        """The run request (``run_key`` unique within the tick)."""
        first, last = partition_key(self.first_group, self.days[0]), partition_key(self.last_group, self.days[-1])
        zones = ",".join(self.zones)
        tags = {
            ZONES_TAG: zones,
            PULL_GENERATION_TAG: self.generation.isoformat(),
            generation_tag_key(self.generation): zones,
        }
        if first == last:
            return dg.RunRequest(run_key=f"{self.generation}|{index}", partition_key=first, tags=tags)
        return dg.RunRequest(
            run_key=f"{self.generation}|{index}",
            tags={**tags, ASSET_PARTITION_RANGE_START_TAG: str(first), ASSET_PARTITION_RANGE_END_TAG: str(last)},
        )


def plan_runs(
    groups_in_order: list[str],
    customers_by_group: dict[str, list[str]],
    days: tuple[date, ...],
    zones: tuple[str, ...],
    generation: date,
    customer_days_per_run: int,
) -> list[PlannedRun]:
    """Pack the groups that hold wanted customers, in the instance's partition order (ranges of
    a dynamic dimension follow it), into runs of at most ``customer_days_per_run`` customer-days
    (a group that alone holds more gets a run of its own)."""
    runs: list[PlannedRun] = []
    chunk: list[str] = []
    size = 0
    for group in groups_in_order:
        members = customers_by_group.get(group)
        if not members:
            continue
        cost = len(members) * len(days)
        if chunk and size + cost > customer_days_per_run:
            runs.append(PlannedRun(chunk[0], chunk[-1], days, zones, generation, size))
            chunk, size = [], 0
        chunk.append(group)
        size += cost
    if chunk:
        runs.append(PlannedRun(chunk[0], chunk[-1], days, zones, generation, size))
    return runs


def build_daily_pull_schedule(job, config: PipelineConfig) -> dg.ScheduleDefinition:
    """A schedule that requests, per time zone and pull generation, the pull window of every
    customer of ``config`` in that zone whose group has a partition, in packed partition-range
    runs."""
    groups = customer_groups(config)
    time_zones = {customer_id: customer.time_zone for customer_id, customer in config.customers.items()}
    settle = timedelta(hours=config.settle_hours)
    lookback_days, start_date = config.lookback_days, config.start_date
    per_run = config.customer_days_per_run

    @dg.schedule(
        name=DAILY_PULL_SCHEDULE_NAME,
        job=job,
        cron_schedule=DAILY_PULL_CRON,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            f"Pull each customer's newest day complete in its time zone ({config.settle_hours:g} h settle) "
            f"and {lookback_days} earlier day(s), once per time zone per day, "
            f"at most {per_run} customer-days per run."
        ),
    )
    def daily_pull(context: dg.ScheduleEvaluationContext):
        tick = context.scheduled_execution_time or datetime.now(UTC)
        if tick.tzinfo is None:
            tick = tick.replace(tzinfo=UTC)
        partitions = context.instance.get_dynamic_partitions(CUSTOMERS_PARTITION)
        present = set(partitions)
        by_zone: dict[str, list[str]] = defaultdict(list)
        missing = []
        for customer_id in sorted(time_zones):
            if groups.group_of(customer_id) in present:
                by_zone[time_zones[customer_id]].append(customer_id)
            else:
                missing.append(customer_id)
        if missing:
            context.log.warning(
                f"{len(missing)} configured customer(s) have no partition yet (the customer sync sensor adds "
                "them), not pulled: "
                + ", ".join(missing[:_UNKNOWN_SAMPLE])
                + (" ..." if len(missing) > _UNKNOWN_SAMPLE else "")
            )
        if not by_zone:
            return dg.SkipReason("no configured customer has a partition yet (the customer sync sensor adds them)")

        last = last_partition_date(tick)
        windows = {  # per time zone, not per customer: thousands of customers share a few dozen zones
            zone: (
                pull_generation(tick, zone, settle, last),
                tuple(complete_days(tick, zone, settle, lookback_days, start_date, last)),
            )
            for zone in by_zone
        }
        requested = {generation: _requested(context.instance, generation) for generation, _ in windows.values()}
        buckets: dict[tuple[date, tuple[date, ...]], list[str]] = defaultdict(list)
        for zone, (generation, days) in sorted(windows.items()):
            if days and zone not in requested[generation]:
                buckets[(generation, days)].append(zone)
        if not buckets:
            generations = ", ".join(sorted({g.isoformat() for g, _ in windows.values()}))
            return dg.SkipReason(f"every time zone's pull window is requested already (generation(s) {generations})")
        planned: list[PlannedRun] = []
        for (generation, days), zones in sorted(buckets.items(), key=lambda kv: (-kv[0][0].toordinal(), kv[1])):
            customers = [c for zone in zones for c in by_zone[zone]]
            planned += plan_runs(
                partitions, groups.by_group(customers), tuple(sorted(days)), tuple(zones), generation, per_run
            )
        context.log.info(
            f"requesting {len(planned)} run(s), {sum(p.customer_days for p in planned)} customer-day(s), "
            f"for {sum(len(z) for z in buckets.values())} time zone(s) whose pull generation is new"
        )
        return [run.request(i) for i, run in enumerate(planned)]

    return daily_pull
