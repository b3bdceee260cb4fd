"""Bounds on what may be recorded: no partition day that has not begun anywhere on earth, and
no run id from the future.

A result for a day after today in UTC+14 (where every calendar day begins first) names a
partition no pull can have produced yet; a
run id whose UUIDv7 time lies more than ``RUN_ID_FUTURE_SKEW`` ahead of the clock would
supersede every real run of its partition for years. Both are ``INVALID_ARGUMENT`` and change
nothing (the CLI, the API and the validators all record through ``ValidationResult``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.run_ids import run_id_created_at, run_id_millis

EARLIEST_ZONE_OFFSET = timedelta(hours=14)  # UTC+14 (Line Islands): where a day starts first
RUN_ID_FUTURE_SKEW = timedelta(minutes=5)


def latest_recordable_date(now: datetime) -> date:
    """Today in UTC+14 at ``now``: the latest partition day that has begun somewhere."""
    return (now.astimezone(UTC) + EARLIEST_ZONE_OFFSET).date()


def check_recordable(logical_date: date, run_id: str, now: datetime) -> None:
    """``INVALID_ARGUMENT`` for a day after today (UTC+14) or a run id over 5 minutes ahead."""
    latest = latest_recordable_date(now)
    if logical_date > latest:
        raise invalid_argument(
            f"logical_date {logical_date.isoformat()} has not begun anywhere yet "
            f"(the latest day with data is {latest.isoformat()}, today in UTC+14)",
            {"field": "logical_date"},
        )
    limit = now.astimezone(UTC) + RUN_ID_FUTURE_SKEW
    if run_id_millis(run_id) > int(limit.timestamp() * 1000):
        raise invalid_argument(
            f"run_id {run_id} was made at {run_id_created_at(run_id).isoformat()}, more than "
            f"{int(RUN_ID_FUTURE_SKEW.total_seconds() // 60)} minutes in the future: run ids are "
            "UUIDv7 stamped when the pull starts",
            {"field": "run_id"},
        )
