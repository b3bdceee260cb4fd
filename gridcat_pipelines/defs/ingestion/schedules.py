"""The daily pull, per account-local day: each customer's newest complete day plus a lookback
window (conversion lag), requested once per customer per *pull generation*.

Google Ads reports ``segments.date`` in the account's time zone, so a customer's day is pulled
only once it ended there at least ``settle_hours`` ago (:mod:`gridcat_pipelines.pull_days`).
The schedule ticks hourly; at each tick a customer's *generation* is its newest complete day
(at most the newest daily partition, yesterday in UTC). It moves forward once a day, at a
different hour for each time zone, and its window (the generation and ``lookback_days`` days
before it) is requested once.

Dagster dedupes a schedule's ``run_key`` only within one tick (a re-evaluated, interrupted tick
does not launch twice), not across ticks, so the schedule dedupes across ticks itself: every
run it requests carries the tag ``gridcat/pull_generation.<generation>`` =
``<customer>|<day>``, and a tick requests only the (customer, day) of the current generations
that no run has been tagged with yet. Later ticks of the same generation therefore request
nothing; a tick missed while the daemon was down is made up by the next one. Runs launched
otherwise (backfills, ``gridcat pull``) do not count.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION, last_partition_date, partition_key
from gridcat_pipelines.feeds.models import PipelineConfig
from gridcat_pipelines.pull_days import complete_days, pull_generation

DAILY_PULL_SCHEDULE_NAME = "google_ads_daily_pull"
DAILY_PULL_CRON = "0 * * * *"  # hourly: each account's day is requested within an hour of settling
PULL_GENERATION_TAG = "gridcat/pull_generation"
_UNKNOWN_SAMPLE = 20


def generation_tag_key(generation: date) -> str:
    """The run tag key marking the runs of one pull generation (value ``<customer>|<day>``)."""
    return f"{PULL_GENERATION_TAG}.{generation.isoformat()}"


def pull_run_key(customer_id: str, day: date, generation: date) -> str:
    """The run key of one customer x day of one pull generation."""
    return f"{customer_id}|{day.isoformat()}|{generation.isoformat()}"


def _requested(instance: dg.DagsterInstance, generation: date) -> set[str]:
    """``<customer>|<day>`` of every run already requested for ``generation`` (one indexed query)."""
    found = instance.get_run_tags(tag_keys=[generation_tag_key(generation)])
    return set().union(*(values for _, values in found))


def build_daily_pull_schedule(job, config: PipelineConfig) -> dg.ScheduleDefinition:
    """A schedule that requests one run per customer x day of each customer's pull window, for
    the customers of ``config`` (their time zones) that have a customer partition."""
    time_zones = {customer_id: customer.time_zone for customer_id, customer in config.customers.items()}
    settle = timedelta(hours=config.settle_hours)
    lookback_days, start_date = config.lookback_days, config.start_date

    @dg.schedule(
        name=DAILY_PULL_SCHEDULE_NAME,
        job=job,
        cron_schedule=DAILY_PULL_CRON,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            f"Pull each customer's newest day complete in its time zone ({config.settle_hours:g} h settle) "
            f"and {lookback_days} earlier day(s), once per customer per day."
        ),
    )
    def daily_pull(context: dg.ScheduleEvaluationContext):
        tick = context.scheduled_execution_time or datetime.now(UTC)
        if tick.tzinfo is None:
            tick = tick.replace(tzinfo=UTC)
        customers = context.instance.get_dynamic_partitions(CUSTOMERS_PARTITION)
        if not customers:
            return dg.SkipReason("no customer partitions yet (the customer sync sensor adds them)")
        by_zone: dict[str, list[str]] = defaultdict(list)
        unknown = []
        for customer_id in sorted(customers):
            zone = time_zones.get(customer_id)
            if zone is None:
                unknown.append(customer_id)
            else:
                by_zone[zone].append(customer_id)
        if unknown:
            context.log.warning(
                f"{len(unknown)} customer partition(s) not in the customer config (no time zone), not pulled: "
                + ", ".join(unknown[:_UNKNOWN_SAMPLE])
                + (" ..." if len(unknown) > _UNKNOWN_SAMPLE else "")
            )
        if not by_zone:
            return dg.SkipReason("no customer partition is in the customer config")

        last = last_partition_date(tick)
        windows = {  # per time zone, not per customer: thousands of customers share a few dozen zones
            zone: (
                pull_generation(tick, zone, settle, last),
                complete_days(tick, zone, settle, lookback_days, start_date, last),
            )
            for zone in by_zone
        }
        requested = {generation: _requested(context.instance, generation) for generation, _ in windows.values()}
        wanted = [
            (day, customer_id, generation)
            for zone, (generation, days) in windows.items()
            for customer_id in by_zone[zone]
            for day in days
            if f"{customer_id}|{day.isoformat()}" not in requested[generation]
        ]
        if not wanted:
            generations = ", ".join(sorted({g.isoformat() for g, _ in windows.values()}))
            return dg.SkipReason(f"every customer's pull window is requested already (generation(s) {generations})")
        wanted.sort(key=lambda item: (-item[0].toordinal(), item[1]))  # newest day first
        context.log.info(
            f"requesting {len(wanted)} run(s) for {len({c for _, c, _ in wanted})} customer(s) "
            f"whose pull generation is new"
        )
        return [
            dg.RunRequest(
                run_key=pull_run_key(customer_id, day, generation),
                partition_key=partition_key(customer_id, day),
                tags={
                    "gridcat/customer_id": customer_id,
                    "gridcat/logical_date": day.isoformat(),
                    PULL_GENERATION_TAG: generation.isoformat(),
                    generation_tag_key(generation): f"{customer_id}|{day.isoformat()}",
                },
            )
            for day, customer_id, generation in wanted
        ]

    return daily_pull
