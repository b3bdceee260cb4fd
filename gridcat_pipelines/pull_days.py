"""Which days to pull for one account, in the account's own time zone (no Dagster here).

Google Ads reports ``segments.date`` in the account's time zone, so a day is complete when it
has ended *there*: ``2026-11-25`` ends at ``2026-11-26 00:00`` in Pacific/Honolulu, i.e. at
10:00 UTC, but at ``2026-11-25 11:00 UTC`` in Pacific/Tongatapu. On top of that the Ads API
keeps updating a day's stats for a few hours after it ended, so a day is pulled only once it
ended at least ``settle`` ago.

The daily partitions are UTC days, though: the partition of a day exists only once that day
ended in UTC (``last_partition``, yesterday in UTC). An account east of UTC whose day is
complete before the UTC day ended waits for it: its newest day is at most ``last_partition``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=1024)
def _zone(time_zone: str) -> ZoneInfo:
    return ZoneInfo(time_zone)


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    return now


def newest_complete_day(now: datetime, time_zone: str, settle: timedelta) -> date:
    """The newest day that ended in ``time_zone`` at least ``settle`` before ``now``.

    A day ends at the first instant whose local date is the next day, so this is the local date
    of ``now - settle`` minus one day (daylight-saving days of 23 or 25 hours included).
    """
    if settle < timedelta(0):
        raise ValueError(f"settle must not be negative, got {settle}")
    settled = _aware(now).astimezone(UTC) - settle  # elapsed time, not wall-clock arithmetic
    return settled.astimezone(_zone(time_zone)).date() - timedelta(days=1)


def pull_generation(now: datetime, time_zone: str, settle: timedelta, last_partition: date) -> date:
    """The newest day to pull for the account at ``now``: its newest complete day, but not after
    ``last_partition`` (the newest day that has a partition). It names the account's *pull
    generation*: it moves one day forward once a day, when the account's next day is complete
    (and, east of UTC, has a partition), and each generation pulls its window once."""
    return min(newest_complete_day(now, time_zone, settle), last_partition)


def complete_days(
    now: datetime,
    time_zone: str,
    settle: timedelta,
    lookback_days: int,
    start_date: date,
    last_partition: date,
) -> list[date]:
    """The days to pull for one account at ``now``, newest first: the newest day that ended in
    ``time_zone`` at least ``settle`` ago (at most ``last_partition``) and the ``lookback_days``
    days before it (conversion lag), none before ``start_date``."""
    if lookback_days < 0:
        raise ValueError(f"lookback_days must not be negative, got {lookback_days}")
    newest = pull_generation(now, time_zone, settle, last_partition)
    days = [newest - timedelta(days=i) for i in range(lookback_days + 1)]
    return [d for d in days if d >= start_date]
