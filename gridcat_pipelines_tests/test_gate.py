"""The authoritative-run gate through Dagster: sensor evaluation over the change feed, and the
warehouse loader run as a real job on a real (temporary) instance."""

from __future__ import annotations

import json
import threading
from datetime import date

import dagster as dg
import pytest

from gridcat_pipelines.cli.dagster_instance import ensure_instance
from gridcat_pipelines.config import Settings
from gridcat_pipelines.definitions import build_defs
from gridcat_pipelines.defs.gate.assets import run_id_tag, state_version_tag, warehouse_key
from gridcat_pipelines.defs.gate.sensors import WAREHOUSE_JOB_NAME
from gridcat_pipelines.defs.ingestion.jobs import INGEST_JOB_NAME
from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION, partition_key
from gridcat_pipelines.defs.ingestion.run_scope import request_scope
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.run_ids import new_run_id
from gridcat_pipelines.state import PartitionKey, StateStore, ValidationResult
from gridcat_pipelines.warehouse.parquet_target import ParquetWarehouse
from gridcat_pipelines_tests.gate_helpers import CUSTOMER, DAY, Gate

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def _key(feed: str = "campaign", customer: str = CUSTOMER, day: date = DAY) -> PartitionKey:
    return PartitionKey("google_ads", customer, feed, day)


def _ok(key: PartitionKey, run_id: str, rows: int = 5) -> ValidationResult:
    return ValidationResult(key, run_id, "success", "1", rows)


def _bad(key: PartitionKey, run_id: str) -> ValidationResult:
    return ValidationResult(key, run_id, "failed", "1", 1, "cost_non_negative: 1 row")


def test_sensor_requests_only_new_authoritative_success_runs(env):
    settings, instance, defs, store = env
    gate = Gate(defs, instance)
    assert gate.tick() == []

    first = new_run_id()
    store.record_result(_ok(_key(), first))
    store.record_result(_bad(_key("ad_group"), new_run_id()))  # failed: never requested
    (request,) = gate.tick()
    assert request.tags[run_id_tag("campaign")] == first and request.tags[state_version_tag("campaign")] == "1"
    assert f"{first}:v1" in request.run_key
    assert request.asset_selection == [warehouse_key("campaign")]
    assert str(request.partition_key) == str(partition_key(CUSTOMER, DAY))
    assert gate.tick() == [], "a repeat does nothing"

    store.record_result(_ok(_key(), first))  # replayed: no change, no request
    assert gate.tick() == []

    second = new_run_id()
    store.record_result(_ok(_key(), second, rows=9))
    (newer,) = gate.tick()
    assert newer.tags[run_id_tag("campaign")] == second

    state = store.set_authoritative(_key(), first, expected_version=2)  # re-point back
    (back,) = gate.tick()
    assert back.tags[run_id_tag("campaign")] == first and back.tags[state_version_tag("campaign")] == str(state.version)
    assert back.run_key != request.run_key, "a re-point to a run loaded before must load again"


def test_one_run_per_partition_loads_every_feed_that_moved(env):
    settings, instance, defs, store = env
    gate = Gate(defs, instance)
    runs = {feed: new_run_id() for feed in ("campaign", "ad_group", "account")}
    store.record_results([_ok(_key(feed), run) for feed, run in runs.items()])
    (request,) = gate.tick()
    assert sorted(k.path[-1] for k in request.asset_selection) == sorted(runs)
    for feed, run in runs.items():
        assert request.tags[run_id_tag(feed)] == run and run in request.run_key


def test_success_then_failure_in_one_tick_requests_nothing(env):
    settings, instance, defs, store = env
    gate = Gate(defs, instance)
    store.record_result(_ok(_key(), new_run_id()))
    store.record_result(_bad(_key(), new_run_id()))
    assert gate.tick() == []


def test_sensor_keeps_going_past_a_bad_row(env):
    settings, instance, defs, store = env
    gate = Gate(defs, instance)
    store.record_result(_ok(_key("no_such_feed"), new_run_id()))
    store.record_result(_ok(_key(customer="999"), new_run_id()))  # not a customer partition
    store.record_result(_ok(_key(day=date(2020, 1, 1)), new_run_id()))  # before the partitions start
    good = new_run_id()
    store.record_result(_ok(_key(), good))
    (request,) = gate.tick()
    assert request.tags[run_id_tag("campaign")] == good
    assert json.loads(gate.cursor)["seq"] == store.last_change_seq()


@pytest.mark.postgres
def test_out_of_order_commits_are_not_skipped(tmp_path, pg_url):
    """Writers commit concurrently while the sensor ticks; every final success state gets its load."""
    settings = Settings.from_env({"GRIDCAT_HOME": str(tmp_path / "home"), "GRIDCAT_DB_URL": pg_url})
    instance = ensure_instance(settings)
    defs = build_defs(settings)
    gate = Gate(defs, instance)
    keys = [_key(customer=str(1000 + i)) for i in range(12)]
    instance.add_dynamic_partitions(CUSTOMERS_PARTITION, [k.customer_id for k in keys])

    def writer(seed: int) -> None:
        store = StateStore.open(pg_url)
        for n in range(40):
            key = keys[(seed * 7 + n) % len(keys)]
            result = _ok(key, new_run_id(), rows=n) if (n + seed) % 4 else _bad(key, new_run_id())
            store.record_result(result)
        store.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    requested: list[dg.RunRequest] = []
    while any(t.is_alive() for t in threads):
        requested += gate.tick()
    requested += gate.tick()
    # the last request covering each partition: a one-customer-day run carries the run it planned,
    # a packed range run loads whatever is authoritative when it runs
    config = defs.resources["pipeline_config"].config
    partitions_def = defs.resolve_job_def(WAREHOUSE_JOB_NAME).partitions_def
    last: dict[str, dg.RunRequest] = {}
    for r in requested:
        for part in request_scope(config, partitions_def, instance, r):
            for customer_id in part.customer_ids:
                last[customer_id] = r
    store = StateStore.open(pg_url)
    for key in keys:
        state = store.get(key)
        if state.status == "success":
            assert key.customer_id in last, f"{key}: success at {state.current_run_id} never requested"
            planned = last[key.customer_id].tags.get(run_id_tag("campaign"))
            assert planned in (None, state.current_run_id), key
    store.close()
    instance.dispose()


def test_pull_gate_load_end_to_end_and_held_slice(env):
    settings, instance, defs, store = env
    ingest = defs.resolve_job_def(INGEST_JOB_NAME)
    load = defs.resolve_job_def(WAREHOUSE_JOB_NAME)
    selection = [dg.AssetKey(["google_ads", layer, "campaign"]) for layer in ("raw", "validated")]
    assert ingest.execute_in_process(
        partition_key=partition_key(CUSTOMER, DAY), instance=instance, asset_selection=selection, run_config=QUIET
    ).success
    gate = Gate(defs, instance)

    def run_loads() -> None:
        for r in gate.tick():
            assert load.execute_in_process(
                partition_key=r.partition_key,
                instance=instance,
                tags=r.tags,
                asset_selection=r.asset_selection,
                run_config=QUIET,
            ).success

    run_loads()
    warehouse = ParquetWarehouse(str(settings.warehouse_root))
    state = store.get(_key())
    loaded = warehouse.loaded_slice("campaign", CUSTOMER, DAY)
    assert loaded.run_id == state.current_run_id and loaded.rows == state.record_count
    rows = warehouse.read_slice("campaign", CUSTOMER, DAY)
    assert set(rows.column("run_id").to_pylist()) <= {state.current_run_id}
    for check in ("loaded_run_is_authoritative", "row_count_matches_state"):
        records = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(warehouse_key("campaign"), check), limit=5
        )
        assert records and records[0].status.value == "SUCCEEDED", check
        assert records[0].partition == str(partition_key(CUSTOMER, DAY))

    # a later failed run: the last good slice stays (held)
    store.record_result(_bad(_key(), new_run_id()))
    run_loads()
    assert warehouse.loaded_slice("campaign", CUSTOMER, DAY).run_id == state.current_run_id


def test_loader_skips_a_superseded_run_and_fails_cleanly_on_a_missing_one(env):
    settings, instance, defs, store = env
    load = defs.resolve_job_def(WAREHOUSE_JOB_NAME)
    sink = RawSink(str(settings.raw_root))
    import pyarrow as pa

    old = sink.write_run(_key(), [pa.record_batch({"x": [1, 2]})], schema_version="1").run_id
    store.record_result(_ok(_key(), old, rows=2))
    newer = new_run_id()
    store.record_result(_ok(_key(), newer, rows=3))  # newer is authoritative, its raw run is missing
    pk = partition_key(CUSTOMER, DAY)
    sel = [warehouse_key("campaign")]

    skipped = load.execute_in_process(
        partition_key=pk, instance=instance, tags={run_id_tag("campaign"): old}, asset_selection=sel, run_config=QUIET
    )
    assert skipped.success
    assert not skipped.get_asset_materialization_events()
    warehouse = ParquetWarehouse(str(settings.warehouse_root))
    assert warehouse.loaded_slice("campaign", CUSTOMER, DAY) is None

    failed = load.execute_in_process(
        partition_key=pk,
        instance=instance,
        tags={run_id_tag("campaign"): newer},
        asset_selection=sel,
        run_config=QUIET,
        raise_on_error=False,
    )
    assert not failed.success
    assert warehouse.loaded_slice("campaign", CUSTOMER, DAY) is None
