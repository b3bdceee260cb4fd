"""Account-local days: which days the schedule pulls for one account at one instant
(:mod:`gridcat_pipelines.pull_days`), and the ``pipeline.settle_hours`` setting."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import yaml

from gridcat_pipelines.feeds.loader import DEFAULT_CUSTOMERS_PATH, DEFAULT_FEEDS_PATH, ConfigError, load_pipeline_config
from gridcat_pipelines.pull_days import complete_days, newest_complete_day, pull_generation

HONOLULU = "Pacific/Honolulu"  # UTC-10, no daylight saving
TONGA = "Pacific/Tongatapu"  # UTC+13, no daylight saving
START = date(2026, 1, 1)
H = timedelta(hours=1)


def utc(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def last_partition(now: datetime) -> date:
    """Yesterday in UTC, as ``partitions.last_partition_date`` (this test imports no Dagster)."""
    return now.astimezone(UTC).date() - timedelta(days=1)


NEWEST: list[tuple[str, str, datetime, timedelta, date]] = [
    # Honolulu: 2026-11-25 ends at 2026-11-26 10:00 UTC
    ("HST 23:59, no settle", HONOLULU, utc(26, 9, 59), 0 * H, date(2026, 11, 24)),
    ("HST midnight, no settle", HONOLULU, utc(26, 10), 0 * H, date(2026, 11, 25)),
    ("HST the 06:00 UTC tick", HONOLULU, utc(26, 6), 3 * H, date(2026, 11, 24)),
    ("HST 02:59, 3 h settle", HONOLULU, utc(26, 12, 59), 3 * H, date(2026, 11, 24)),
    ("HST 03:00, 3 h settle", HONOLULU, utc(26, 13), 3 * H, date(2026, 11, 25)),
    # UTC: 2026-11-25 ends at 2026-11-26 00:00 UTC
    ("UTC 23:59, no settle", "UTC", utc(25, 23, 59), 0 * H, date(2026, 11, 24)),
    ("UTC midnight, no settle", "UTC", utc(26, 0), 0 * H, date(2026, 11, 25)),
    ("UTC 02:59, 3 h settle", "UTC", utc(26, 2, 59), 3 * H, date(2026, 11, 24)),
    ("UTC 03:00, 3 h settle", "UTC", utc(26, 3), 3 * H, date(2026, 11, 25)),
    ("UTC the 06:00 UTC tick", "UTC", utc(26, 6), 3 * H, date(2026, 11, 25)),
    # Tonga: 2026-11-25 ends at 2026-11-25 11:00 UTC, before its UTC partition exists
    ("TOT 23:59, no settle", TONGA, utc(25, 10, 59), 0 * H, date(2026, 11, 24)),
    ("TOT midnight, no settle", TONGA, utc(25, 11), 0 * H, date(2026, 11, 25)),
    ("TOT 02:59, 3 h settle", TONGA, utc(25, 13, 59), 3 * H, date(2026, 11, 24)),
    ("TOT 03:00, 3 h settle", TONGA, utc(25, 14), 3 * H, date(2026, 11, 25)),
    ("TOT the 06:00 UTC tick", TONGA, utc(26, 6), 3 * H, date(2026, 11, 25)),
    # daylight saving: 2026-11-01 has 25 hours in Los Angeles and ends at 2026-11-02 08:00 UTC
    ("PST fall-back day, 1 min early", "America/Los_Angeles", utc(2, 7, 59), 0 * H, date(2026, 10, 31)),
    ("PST fall-back day, ended", "America/Los_Angeles", utc(2, 8), 0 * H, date(2026, 11, 1)),
    # fractional settle; a half-hour zone (UTC+5:30): 2026-11-25 ends at 18:30 UTC
    ("IST 01:30 with 1.5 h settle", "Asia/Kolkata", utc(25, 20), 1.5 * H, date(2026, 11, 25)),
    ("IST 01:29 with 1.5 h settle", "Asia/Kolkata", utc(25, 19, 59), 1.5 * H, date(2026, 11, 24)),
]


@pytest.mark.parametrize("zone,now,settle,want", [c[1:] for c in NEWEST], ids=[c[0] for c in NEWEST])
def test_newest_complete_day(zone, now, settle, want):
    assert newest_complete_day(now, zone, settle) == want
    # the same instant in another zone's clock is the same instant
    assert newest_complete_day(now.astimezone(datetime.now().astimezone().tzinfo), zone, settle) == want


def test_the_06_utc_tick_gives_yesterday_to_utc_and_utc_plus_13_but_not_to_utc_minus_10():
    tick, settle = utc(26, 6), 3 * H
    yesterday = date(2026, 11, 25)
    days = {
        zone: complete_days(tick, zone, settle, 3, START, last_partition(tick)) for zone in ("UTC", TONGA, HONOLULU)
    }
    assert days["UTC"] == days[TONGA] == [yesterday - timedelta(days=i) for i in range(4)]
    assert days[HONOLULU] == [date(2026, 11, 24) - timedelta(days=i) for i in range(4)]
    assert yesterday not in days[HONOLULU]


def test_east_of_utc_waits_for_the_utc_partition():
    """Tonga's 2026-11-26 is complete (and settled) at 2026-11-26 14:00 UTC, but its daily
    partition exists only from 2026-11-27 00:00 UTC: until then the newest day is the 25th."""
    settle = 3 * H
    for now in (utc(26, 14), utc(26, 20), utc(26, 23, 59)):
        assert newest_complete_day(now, TONGA, settle) == date(2026, 11, 26)
        assert pull_generation(now, TONGA, settle, last_partition(now)) == date(2026, 11, 25)
        assert complete_days(now, TONGA, settle, 1, START, last_partition(now)) == [
            date(2026, 11, 25),
            date(2026, 11, 24),
        ]
    at_midnight = utc(27, 0)
    assert complete_days(at_midnight, TONGA, settle, 1, START, last_partition(at_midnight)) == [
        date(2026, 11, 26),
        date(2026, 11, 25),
    ]


def test_a_generation_moves_once_a_day_per_zone():
    """Over two UTC days, hour by hour, every zone's newest day moves forward exactly once a day,
    by one day, at the hour its day (plus settle) ended; the window is always the newest day and
    ``lookback_days`` before it."""
    settle = 3 * H
    moved_at = {"UTC": [], TONGA: [], HONOLULU: []}
    for zone, moves in moved_at.items():
        previous = None
        for hour in range(48):
            now = utc(25, 0) + hour * H
            generation = pull_generation(now, zone, settle, last_partition(now))
            window = complete_days(now, zone, settle, 3, START, last_partition(now))
            assert window == [generation - timedelta(days=i) for i in range(4)]
            if previous is not None and generation != previous:
                assert generation == previous + timedelta(days=1)
                moves.append(now)
            previous = generation
    assert moved_at["UTC"] == [utc(25, 3), utc(26, 3)]  # midnight UTC + 3 h
    assert moved_at[TONGA] == [utc(26, 0)]  # its day ended at 11:00 UTC; the partition comes at midnight UTC
    assert moved_at[HONOLULU] == [utc(25, 13), utc(26, 13)]  # midnight HST = 10:00 UTC, + 3 h


def test_window_stops_at_start_date_and_can_be_empty():
    now = utc(26, 12)
    assert complete_days(now, "UTC", 3 * H, 3, date(2026, 11, 24), last_partition(now)) == [
        date(2026, 11, 25),
        date(2026, 11, 24),
    ]
    assert complete_days(now, "UTC", 3 * H, 3, date(2026, 11, 26), last_partition(now)) == []
    assert complete_days(now, "UTC", 3 * H, 0, START, last_partition(now)) == [date(2026, 11, 25)]


def test_bad_arguments():
    with pytest.raises(ValueError, match="timezone-aware"):
        newest_complete_day(datetime(2026, 11, 26, 6), "UTC", H)
    with pytest.raises(ValueError, match="settle"):
        newest_complete_day(utc(26, 6), "UTC", -H)
    with pytest.raises(ValueError, match="lookback_days"):
        complete_days(utc(26, 6), "UTC", H, -1, START, date(2026, 11, 25))


# --------------------------------------------------------------------------- pipeline.settle_hours


def _load_with_pipeline(tmp_path, **pipeline):
    doc = yaml.safe_load(DEFAULT_FEEDS_PATH.read_text())
    doc["pipeline"] = {"start_date": "2026-01-01", **pipeline}
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_pipeline_config(path, DEFAULT_CUSTOMERS_PATH)


def test_settle_hours_default_and_shipped():
    assert load_pipeline_config().settle_hours == 3
    # the shipped config's other settings stay as they were
    assert load_pipeline_config().lookback_days == 3


@pytest.mark.parametrize("value,want", [(None, 3.0), (0, 0.0), (1.5, 1.5), (48, 48.0)])
def test_settle_hours_accepted(tmp_path, value, want):
    config = _load_with_pipeline(tmp_path, **({} if value is None else {"settle_hours": value}))
    assert config.settle_hours == want and isinstance(config.settle_hours, float)


@pytest.mark.parametrize("value", [-1, 48.5, "3h", True, None, float("nan"), [3]])
def test_bad_settle_hours_fails_with_file_path_and_reason(tmp_path, value):
    with pytest.raises(ConfigError) as info:
        _load_with_pipeline(tmp_path, settle_hours=value)
    err = info.value
    assert err.path == "pipeline.settle_hours", err.message
    assert "must be a number of hours from 0 to 48" in err.reason
    assert err.message.startswith(f"{err.file}: pipeline.settle_hours: ")
