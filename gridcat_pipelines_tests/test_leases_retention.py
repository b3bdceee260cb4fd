"""Leases pin authoritative runs; retention deletes only superseded, unpinned, old runs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from gridcat_pipelines.cli.main import main
from gridcat_pipelines.errors import FAILED_PRECONDITION, INVALID_ARGUMENT, NOT_FOUND, GridcatError
from gridcat_pipelines.leases.store import LeaseStore
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.retention import apply_retention
from gridcat_pipelines.run_ids import run_id_at
from gridcat_pipelines.state import PartitionKey, ValidationResult
from gridcat_pipelines.warehouse.loader import LOADED, SKIPPED_SUPERSEDED, load_partition
from gridcat_pipelines.warehouse.parquet_target import ParquetWarehouse

KEY = PartitionKey("google_ads", "1234567890", "campaign", date(2026, 11, 20))
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _ok(run_id: str, key: PartitionKey = KEY) -> ValidationResult:
    return ValidationResult(key, run_id, "success", "1", 2)


def _runs(sink: RawSink, key: PartitionKey, ages_days: list[float]) -> list[str]:
    """Raw runs created ``ages_days`` ago (oldest first)."""
    out = []
    for age in ages_days:
        run_id = run_id_at(int((NOW - timedelta(days=age)).timestamp() * 1000))
        sink.write_run(key, [pa.record_batch({"x": [1, 2]})], schema_version="1", run_id=run_id)
        out.append(run_id)
    return out


def test_lease_lifecycle(store):
    clock = Clock(NOW)
    leases = LeaseStore(store, clock=clock)
    with pytest.raises(GridcatError) as err:
        leases.begin([KEY])
    assert err.value.code == FAILED_PRECONDITION  # nothing authoritative to read
    run = run_id_at(int(NOW.timestamp() * 1000) - 1000)
    store.record_result(_ok(run))
    lease = leases.begin([KEY], ttl_seconds=60)
    assert lease.run_ids == [run] and lease.status == "ACTIVE"
    assert lease.expires_at == NOW + timedelta(seconds=60)
    assert leases.pinned_runs() == {(KEY, run)}

    clock.now = NOW + timedelta(seconds=10)
    assert leases.renew(lease.lease_id, ttl_seconds=5).expires_at == NOW + timedelta(seconds=60), "never shortens"
    assert leases.renew(lease.lease_id, ttl_seconds=600).expires_at == clock.now + timedelta(seconds=600)

    clock.now = NOW + timedelta(hours=1)
    assert leases.get(lease.lease_id).status == "EXPIRED"
    assert leases.pinned_runs() == set(), "an expired lease releases its pins"
    with pytest.raises(GridcatError) as err:
        leases.renew(lease.lease_id)
    assert err.value.code == FAILED_PRECONDITION

    other = leases.begin([KEY])
    ended = leases.end(other.lease_id, abort=True)
    assert ended.status == "ENDED_ABORT" and leases.end(other.lease_id).status == "ENDED_ABORT"
    assert leases.pinned_runs() == set()
    for call, code in [
        (lambda: leases.get("nope"), NOT_FOUND),
        (lambda: leases.begin([KEY], ttl_seconds=-1), INVALID_ARGUMENT),
        (lambda: leases.begin([]), INVALID_ARGUMENT),
    ]:
        with pytest.raises(GridcatError) as err:
            call()
        assert err.value.code == code


def test_retention_never_deletes_a_pinned_or_authoritative_run(store, tmp_path):
    sink = RawSink(str(tmp_path / "raw"))
    old_pinned, old_free, authoritative = _runs(sink, KEY, [10, 9, 8])
    (newer_unvalidated,) = _runs(sink, KEY, [7])
    store.record_result(_ok(old_pinned))
    leases = LeaseStore(store, clock=Clock(NOW))
    lease = leases.begin([KEY], ttl_seconds=3600)  # pins old_pinned while it is authoritative
    store.record_result(_ok(authoritative))  # newer run takes over; old_pinned stays pinned
    other_key = PartitionKey("google_ads", "1234567890", "ad_group", date(2026, 11, 20))
    (no_state,) = _runs(sink, other_key, [20])  # a partition without state: never touched

    dry = apply_retention(store, sink, leases, older_than_days=1, dry_run=True, now=NOW)
    assert [r["run_id"] for r in dry.to_json()["would_delete"]] == [old_free]
    assert dry.kept_pinned == 1 and dry.kept_authoritative == 1
    assert len(sink.list_runs(KEY)) == 4, "a dry run deletes nothing"

    done = apply_retention(store, sink, leases, older_than_days=1, now=NOW)
    assert [r["run_id"] for r in done.to_json()["deleted"]] == [old_free]
    assert done.to_json()["deleted"][0]["path"].startswith("file://")
    remaining = {r.run_id for r in sink.list_runs(KEY)}
    assert remaining == {old_pinned, authoritative, newer_unvalidated}
    assert {r.run_id for r in sink.list_runs(other_key)} == {no_state}

    leases.end(lease.lease_id)
    assert (
        apply_retention(store, sink, leases, older_than_days=9.5, now=NOW).to_json()["deleted"][0]["run_id"]
        == old_pinned
    )
    assert {r.run_id for r in sink.list_runs(KEY)} == {authoritative, newer_unvalidated}


def test_retention_age_and_zero(store, tmp_path):
    sink = RawSink(str(tmp_path / "raw"))
    a, b, c = _runs(sink, KEY, [3, 0.5, 0.1])
    store.record_result(_ok(c))
    leases = LeaseStore(store, clock=Clock(NOW))
    assert [
        r["run_id"] for r in apply_retention(store, sink, leases, older_than_days=1, dry_run=True, now=NOW).runs
    ] == [a]
    assert [
        r["run_id"] for r in apply_retention(store, sink, leases, older_than_days=0, dry_run=True, now=NOW).runs
    ] == [a, b]
    with pytest.raises(GridcatError):
        apply_retention(store, sink, leases, older_than_days=-1)


def test_loader_holds_a_lease_and_skips_a_run_no_longer_authoritative(store, tmp_path):
    sink = RawSink(str(tmp_path / "raw"))
    warehouse = ParquetWarehouse(str(tmp_path / "wh"))
    first, second = _runs(sink, KEY, [2, 1])
    store.record_result(_ok(first))
    leases = LeaseStore(store)
    assert load_partition(store, sink, warehouse, KEY, first, leases=leases).status == LOADED
    assert leases.list() == [], "the lease ends with the load"
    assert [l.status for l in leases.list(include_ended=True)] == ["ENDED_COMMIT"]
    store.record_result(_ok(second))
    assert load_partition(store, sink, warehouse, KEY, first, leases=leases).status == SKIPPED_SUPERSEDED
    assert warehouse.loaded_slice("campaign", KEY.customer_id, KEY.logical_date).run_id == first


def test_lease_and_retention_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRIDCAT_HOME", str(tmp_path))
    monkeypatch.delenv("GRIDCAT_DB_URL", raising=False)

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    run("db", "upgrade")
    key_args = ["--customer", KEY.customer_id, "--query", KEY.query_name, "--date", KEY.logical_date.isoformat()]
    code, _, err = run("leases", "begin", *key_args, "--json")
    assert code == 1 and json.loads(err.strip().splitlines()[-1])["code"] == "FAILED_PRECONDITION"
    sink = RawSink(str(tmp_path / "raw"))
    old, new = _runs(sink, KEY, [5, 4])
    for run_id in (old, new):
        run("states", "record", *key_args, "--run-id", run_id, "--status", "success", "--record-count", "2", "--json")
    code, out, _ = run("leases", "begin", *key_args, "--ttl", "120", "--json")
    lease = json.loads(out)
    assert code == 0 and lease["run_ids"] == [new] and {"lease_id", "run_ids", "expires_at"} <= set(lease)
    code, out, _ = run("leases", "renew", "--lease-id", lease["lease_id"], "--ttl", "600", "--json")
    assert json.loads(out)["expires_at"] > lease["expires_at"]
    code, out, _ = run("leases", "list", "--json")
    assert [l["lease_id"] for l in json.loads(out)["leases"]] == [lease["lease_id"]]
    code, out, _ = run("retention", "--older-than", "0", "--dry-run", "--json")
    report = json.loads(out)
    assert [r["run_id"] for r in report["would_delete"]] == [old]
    assert report["kept_authoritative"] == 1 and report["kept_pinned"] == 0
    code, out, _ = run("leases", "end", "--lease-id", lease["lease_id"], "--json")
    assert json.loads(out)["status"] == "ENDED_COMMIT"
    code, out, _ = run("retention", "--older-than", "0", "--json")
    assert [r["run_id"] for r in json.loads(out)["deleted"]] == [old]
    code, _, err = run("retention", "--older-than", "soon")
    assert code == 1 and json.loads(err.strip().splitlines()[-1])["code"] == "INVALID_ARGUMENT"
