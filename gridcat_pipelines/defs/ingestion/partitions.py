"""Daily x customer partitions. Customers are dynamic partitions synced from the customer config."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg

CUSTOMERS_PARTITION = "customers"
customers_partitions = dg.DynamicPartitionsDefinition(name=CUSTOMERS_PARTITION)


def ingestion_partitions(start_date: date) -> dg.MultiPartitionsDefinition:
    """``{"date": daily from start_date to yesterday (UTC), "customer": dynamic}``."""
    return dg.MultiPartitionsDefinition(
        {
            "date": dg.DailyPartitionsDefinition(start_date=start_date.isoformat(), timezone="UTC"),
            "customer": customers_partitions,
        }
    )


def last_partition_date(now: datetime | None = None) -> date:
    """The newest day the daily partitions have: yesterday in UTC (a day is a partition once it ended)."""
    return (now or datetime.now(UTC)).astimezone(UTC).date() - timedelta(days=1)


def partition_key(customer_id: str, day: date) -> dg.MultiPartitionKey:
    """The Dagster partition key of one customer x day (rendered ``<customer>|<YYYY-MM-DD>``)."""
    return dg.MultiPartitionKey({"customer": customer_id, "date": day.isoformat()})


def partition_dims(key: str) -> tuple[str, date]:
    """``(customer_id, day)`` of a partition key (a MultiPartitionKey or its string form)."""
    dims = getattr(key, "keys_by_dimension", None)
    if dims is None:  # "customer|date": dimensions are ordered by name
        customer_id, day = str(key).split("|")
    else:
        customer_id, day = dims["customer"], dims["date"]
    return customer_id, date.fromisoformat(day)
