"""Normalisation at the edge and UUIDv7 run ids."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from gridcat_pipelines.errors import INVALID_ARGUMENT, GridcatError
from gridcat_pipelines.run_ids import new_run_id, parse_run_id, run_id_at, run_id_created_at
from gridcat_pipelines.state.keys import PartitionKey, normalize_customer_id, parse_tag_pairs


def test_customer_ids_are_normalised():
    assert normalize_customer_id("123-456-7890") == "1234567890"
    assert normalize_customer_id("1234567890") == "1234567890"
    assert normalize_customer_id(42) == "42"


@pytest.mark.parametrize("bad", ["", "12a", "-123", "123-", "1 2", "12--3", "１２３", None, 1.5])
def test_bad_customer_ids_are_rejected(bad):
    with pytest.raises(GridcatError) as err:
        normalize_customer_id(bad)
    assert err.value.code == INVALID_ARGUMENT


def test_key_parse():
    key = PartitionKey.parse("123-456-7890", "campaign", "2026-02-28")
    assert key.as_tuple() == ("google_ads", "1234567890", "campaign", date(2026, 2, 28))
    assert str(key) == "google_ads/1234567890/campaign/2026-02-28"


@pytest.mark.parametrize("bad", ["2026-02-29", "2026-13-01", "26-01-01", "2026/01/01", "2026-1-1", ""])
def test_bad_dates(bad):
    with pytest.raises(GridcatError):
        PartitionKey.parse("1", "campaign", bad)


def test_run_ids_are_uuid7_and_increase():
    ids = [new_run_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    for value in ids[:10]:
        parsed = uuid.UUID(value)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_run_id_time_order_across_milliseconds():
    earlier = run_id_at(1_700_000_000_000)
    later = run_id_at(1_700_000_000_001)
    assert earlier < later
    assert run_id_created_at(earlier) == datetime.fromtimestamp(1_700_000_000, tz=UTC)


def test_run_id_parse_normalises_case_and_rejects_others():
    value = new_run_id()
    assert parse_run_id(value.upper()) == value
    for bad in [str(uuid.uuid4()), "x", value[:-1], value + "0"]:
        with pytest.raises(GridcatError):
            parse_run_id(bad)


def test_tag_pairs():
    assert parse_tag_pairs(["team=core", "env=a=b"]) == {"env": "a=b", "team": "core"}
    assert parse_tag_pairs(None) is None
    with pytest.raises(GridcatError):
        parse_tag_pairs(["novalue"])
    with pytest.raises(GridcatError):
        parse_tag_pairs(["bad key=1"])
