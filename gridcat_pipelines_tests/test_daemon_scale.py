"""The real ``dagster-daemon`` on a PostgreSQL-backed instance runs the daily schedule for 200
synthetic accounts end to end: the schedule's packed partition-range runs go through the run
queue, the daemon launches them, the customer sync sensor made the shard partitions, and the
gate sensor loads every partition into the warehouse by itself.

The schedule ticks hourly; the test evaluates one tick where every account's day has settled
(as the daemon's scheduler would) and submits its requests to the instance's queue, which the
daemon drains. ``lookback_days`` is 0 here so the round stays a few minutes on 2 cores; the
figures for the full window are ``bench/daily_pull.py``'s.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime

import dagster as dg
import pytest
import yaml

from gridcat_pipelines.config import Settings
from gridcat_pipelines.definitions import build_defs
from gridcat_pipelines.defs.gate.sensors import GATE_SENSOR_NAME, RECONCILE_SENSOR_NAME, WAREHOUSE_JOB_NAME
from gridcat_pipelines.defs.ingestion.jobs import INGEST_JOB_NAME
from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION
from gridcat_pipelines.defs.ingestion.run_scope import customer_groups, request_scope
from gridcat_pipelines.state import PartitionKey, StateStore
from gridcat_pipelines.warehouse.parquet_target import ParquetWarehouse
from gridcat_pipelines.warehouse.reconcile import find_stale
from gridcat_pipelines_tests.test_daemon_e2e import (  # noqa: F401 - fixtures
    REPO,
    _schedule_run_requests,
    _submit,
    daemon_factory,
    e2e_env,
)

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess, pytest.mark.postgres]

ACCOUNTS = 200
ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Asia/Tokyo")
FEEDS = ("campaign", "account")


def _configure(env: dict[str, str]) -> None:
    """Rewrite the e2e configs: ``ACCOUNTS`` customers over ``ZONES``, ``FEEDS``, no lookback."""
    feeds_doc = yaml.safe_load((REPO / "config" / "google_apis.yaml").read_text())
    feeds_doc["feeds"] = [f for f in feeds_doc["feeds"] if f["name"] in FEEDS]
    feeds_doc["pipeline"]["lookback_days"] = 0
    customers = [
        {
            "customer_id": str(3_000_000_000 + i),
            "name": f"Account {i}",
            "time_zone": ZONES[i % len(ZONES)],
            "currency": "USD",
            "tags": {"team": f"t{i % 5}"},
        }
        for i in range(ACCOUNTS)
    ]
    with open(env["GRIDCAT_FEEDS_CONFIG"], "w") as f:
        yaml.safe_dump(feeds_doc, f, sort_keys=False)
    with open(env["GRIDCAT_CUSTOMERS_CONFIG"], "w") as f:
        yaml.safe_dump({"customers": customers}, f, sort_keys=False)


def test_the_daemon_runs_the_daily_schedule_for_200_accounts(e2e_env, daemon_factory):  # noqa: F811
    env = e2e_env
    _configure(env)
    settings = Settings.from_env(env)
    StateStore.open(env["GRIDCAT_DB_URL"], upgrade=True).close()
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    store = StateStore.open(env["GRIDCAT_DB_URL"])
    daemon = daemon_factory(env)
    try:
        config = settings.pipeline_config()
        groups = customer_groups(config)
        assert groups.sharded and len(groups.keys()) == 16

        # the daemon's customer sync sensor adds the shard partitions by itself
        deadline = time.monotonic() + 120
        while set(instance.get_dynamic_partitions(CUSTOMERS_PARTITION)) != set(groups.keys()):
            daemon.assert_alive()
            assert time.monotonic() < deadline, f"no shard partitions after 120 s:\n{daemon.tail()}"
            time.sleep(1)

        # 23:00 UTC: yesterday (UTC) has settled in every zone here, Tokyo's today has not
        defs = build_defs(settings)
        today = datetime.now(UTC).date()
        day = today - timedelta(days=1)
        tick = datetime.combine(today, dtime(23, 0), tzinfo=UTC)
        requests = _schedule_run_requests(defs, instance, tick)
        partitions_def = defs.resolve_job_def(INGEST_JOB_NAME).partitions_def
        covered = sorted(
            (c, part.day)
            for r in requests
            for part in request_scope(config, partitions_def, instance, r)
            for c in part.customer_ids
        )
        assert covered == sorted((c, day) for c in config.customers)
        assert len(requests) <= 2  # 200 customer-days, up to 400 a run (whole shards)
        _submit(env, defs, requests)

        keys = [PartitionKey("google_ads", c, f, day) for c in config.customers for f in FEEDS]
        warehouse = ParquetWarehouse(str(settings.warehouse_root))

        def stale() -> int:
            return len(
                find_stale(
                    store,
                    feeds=FEEDS,
                    customers=None,
                    start_date=day,
                    end_date=day,
                    now=datetime.now(UTC) + timedelta(hours=1),
                )
            )

        deadline = time.monotonic() + 420
        while True:
            daemon.assert_alive()
            runs = list(instance.get_runs())
            failed = [r for r in runs if r.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)]
            assert not failed, f"run(s) failed: {[(r.job_name, r.run_id) for r in failed]}\n{daemon.tail()}"
            states = store.get_many(keys)
            done = all(s.status == "success" for s in states.values())
            if done and all(r.is_finished for r in runs) and stale() == 0:
                break
            assert time.monotonic() < deadline, (
                f"timed out: {sum(s.status == 'success' for s in states.values())}/{len(keys)} success, "
                f"{stale()} stale, runs {[(r.job_name, r.status.value) for r in runs]}\n{daemon.tail()}"
            )
            time.sleep(2)

        ingest = [r for r in runs if r.job_name == INGEST_JOB_NAME]
        loads = [r for r in runs if r.job_name == WAREHOUSE_JOB_NAME]
        assert len(ingest) == len(requests) and all(r.status == dg.DagsterRunStatus.SUCCESS for r in ingest)
        # the loads are packed too: a handful of load runs for 400 partitions, not 400. The gate
        # leaves partitions an ingest run still covers to reconcile, which loads them once it ended
        sensors = {GATE_SENSOR_NAME, RECONCILE_SENSOR_NAME}
        assert loads and all(r.tags.get("dagster/sensor_name") in sensors for r in loads)
        assert len(loads) <= 20, len(loads)
        for key in keys:  # the warehouse holds exactly each partition's authoritative run
            state = store.get(key)
            loaded = warehouse.loaded_slice(key.query_name, key.customer_id, key.logical_date)
            assert loaded is not None and loaded.run_id == state.current_run_id, key
            assert loaded.rows == state.record_count, key
    finally:
        store.close()
        instance.dispose()
