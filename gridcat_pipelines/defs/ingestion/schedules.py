"""The daily pull: yesterday plus a lookback window (conversion lag) for every customer."""

from datetime import date, timedelta

import dagster as dg

from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION, partition_key

DAILY_PULL_CRON = "0 6 * * *"


def pull_dates(today: date, lookback_days: int, start_date: date) -> list[date]:
    """Yesterday and the ``lookback_days`` days before it, newest first, none before ``start_date``."""
    yesterday = today - timedelta(days=1)
    days = [yesterday - timedelta(days=i) for i in range(lookback_days + 1)]
    return [d for d in days if d >= start_date]


def build_daily_pull_schedule(job, *, lookback_days: int, start_date: date) -> dg.ScheduleDefinition:
    """A schedule that requests one run per customer x day of the pull window."""

    @dg.schedule(
        name="google_ads_daily_pull",
        job=job,
        cron_schedule=DAILY_PULL_CRON,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Pull yesterday and {lookback_days} earlier day(s) for every customer.",
    )
    def daily_pull(context: dg.ScheduleEvaluationContext):
        tick = context.scheduled_execution_time
        customers = sorted(context.instance.get_dynamic_partitions(CUSTOMERS_PARTITION))
        if not customers:
            return dg.SkipReason("no customer partitions yet (the customer sync sensor adds them)")
        return [
            dg.RunRequest(
                run_key=f"{customer}|{day.isoformat()}|{tick.date().isoformat()}",
                partition_key=partition_key(customer, day),
                tags={"gridcat/customer_id": customer, "gridcat/logical_date": day.isoformat()},
            )
            for day in pull_dates(tick.date(), lookback_days, start_date)
            for customer in customers
        ]

    return daily_pull
