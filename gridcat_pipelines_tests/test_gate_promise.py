"""The gate's promise under concurrency, faults and bad input: the warehouse holds exactly the
authoritative run of every ``success`` partition, and a failed partition keeps its last good
slice. One deterministic test per way it used to break (each injects the fault and checks the
invariant afterwards), then the fixes found alongside."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from gridcat_pipelines.cli.local_runs import evaluate_sensor, run_load
from gridcat_pipelines.cli.main import main
from gridcat_pipelines.defs.gate.assets import SOURCE_TAG, run_id_tag
from gridcat_pipelines.defs.gate.sensors import RECONCILE_SENSOR_NAME
from gridcat_pipelines.defs.ingestion.partitions import ingestion_partitions
from gridcat_pipelines.defs.resources import StateStoreResource
from gridcat_pipelines.defs.tag_facets.sensors import JOB_TAG, tag_facet_backfill_sensor
from gridcat_pipelines.errors import FAILED_PRECONDITION, INVALID_ARGUMENT, GridcatError
from gridcat_pipelines.feeds.loader import load_pipeline_config
from gridcat_pipelines.leases.store import LeaseStore
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.retention import apply_retention
from gridcat_pipelines.run_ids import new_run_id, run_id_at
from gridcat_pipelines.state import PartitionKey, StateStore, ValidationResult
from gridcat_pipelines.tag_facets.service import FacetService
from gridcat_pipelines.warehouse.iceberg_target import IcebergWarehouse
from gridcat_pipelines.warehouse.loader import LOADED, SKIPPED_SUPERSEDED, load_partition
from gridcat_pipelines.warehouse.parquet_target import ParquetWarehouse
from gridcat_pipelines.warehouse.postgres_target import PostgresWarehouse
from gridcat_pipelines.warehouse.reconcile import LOAD_FAILED, PENDING_LOAD, find_stale, reasons_for
from gridcat_pipelines.warehouse.status import warehouse_status
from gridcat_pipelines_tests.gate_helpers import CUSTOMER, DAY, Gate

KEY = PartitionKey("google_ads", CUSTOMER, "campaign", DAY)


def _ok(run_id: str, rows: int, key: PartitionKey = KEY) -> ValidationResult:
    return ValidationResult(key, run_id, "success", "1", rows)


def _write(sink: RawSink, rows: int, key: PartitionKey = KEY, run_id: str | None = None) -> str:
    meta = sink.write_run(key, [pa.record_batch({"x": list(range(rows))})], schema_version="1", run_id=run_id)
    return meta.run_id


class InterleavingSink(RawSink):
    """A raw sink that runs ``meanwhile`` once, while the first load reads its run's data: the
    moment between a load's start-of-load check and its commit."""

    def __init__(self, root: str, meanwhile):
        super().__init__(root)
        self._meanwhile = meanwhile

    def read_table(self, metadata):
        table = super().read_table(metadata)
        meanwhile, self._meanwhile = self._meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return table


def _target(kind: str, tmp_path, pg_databases):
    if kind == "parquet":
        return ParquetWarehouse(str(tmp_path / "warehouse"))
    if kind == "iceberg":
        return IcebergWarehouse.open(tmp_path)
    return PostgresWarehouse(pg_databases.create())


TARGETS = ["parquet", "iceberg", pytest.param("postgres", marks=pytest.mark.postgres)]


# ------------------------------------------------------------------ 1. last writer wins


@pytest.mark.parametrize("target_kind", TARGETS)
def test_a_load_overtaken_by_a_newer_run_is_fenced_out(store, tmp_path, target_kind, request):
    """L1 (run R1) is reading when R2 becomes authoritative and L2 loads it; L1 must not commit."""
    pg = request.getfixturevalue("pg_databases") if target_kind == "postgres" else None
    warehouse = _target(target_kind, tmp_path, pg)
    plain = RawSink(str(tmp_path / "raw"))
    r1 = _write(plain, 5)
    r2 = _write(plain, 9)
    store.record_result(_ok(r1, 5))
    second: dict = {}

    def newer_run_wins_meanwhile():
        store.record_result(_ok(r2, 9))
        second["outcome"] = load_partition(store, plain, warehouse, KEY, r2, leases=LeaseStore(store))

    racing = InterleavingSink(str(tmp_path / "raw"), newer_run_wins_meanwhile)
    first = load_partition(store, racing, warehouse, KEY, r1, leases=LeaseStore(store))
    assert second["outcome"].status == LOADED
    assert first.status == SKIPPED_SUPERSEDED and "superseded" in first.message
    loaded = warehouse.loaded_slice("campaign", CUSTOMER, DAY)
    assert (loaded.run_id, loaded.rows, loaded.state_version) == (r2, 9, 2)
    assert set(warehouse.read_slice("campaign", CUSTOMER, DAY).column("run_id").to_pylist()) == {r2}


@pytest.mark.parametrize("target_kind", TARGETS)
def test_a_commit_never_replaces_a_slice_of_a_higher_version(tmp_path, target_kind, request):
    pg = request.getfixturevalue("pg_databases") if target_kind == "postgres" else None
    warehouse = _target(target_kind, tmp_path, pg)
    newer, older = new_run_id(), new_run_id()
    warehouse.replace_slice("campaign", CUSTOMER, DAY, pa.table({"x": [1, 2]}), newer, state_version=4)
    assert warehouse.stage_slice("campaign", CUSTOMER, DAY, pa.table({"x": [9]}), older, 3).commit() is None
    with pytest.raises(GridcatError) as err:
        warehouse.replace_slice("campaign", CUSTOMER, DAY, pa.table({"x": [9]}), older, state_version=3)
    assert err.value.code == FAILED_PRECONDITION
    loaded = warehouse.loaded_slice("campaign", CUSTOMER, DAY)
    assert (loaded.run_id, loaded.rows, loaded.state_version) == (newer, 2, 4)


@pytest.mark.parametrize("target_kind", ["parquet", "iceberg"])
def test_many_loaders_racing_re_points_end_with_the_authoritative_run(store, tmp_path, target_kind):
    """Threads load whatever they last saw while another re-points back and forth; after the
    dust settles and one last load, the slice is the authoritative run at its version."""
    sink = RawSink(str(tmp_path / "raw"))
    warehouse = _target(target_kind, tmp_path, None)
    runs = [_write(sink, n + 1) for n in range(3)]
    for n, run in enumerate(runs):
        store.record_result(_ok(run, n + 1))
    stop = threading.Event()
    errors: list[BaseException] = []

    def loader():
        while not stop.is_set():
            try:
                load_partition(store, sink, warehouse, KEY, leases=LeaseStore(store))
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=loader) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(30):
        state = store.get(KEY)
        store.set_authoritative(KEY, runs[i % 3], state.version)
        time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    final = store.get(KEY)
    loaded = warehouse.loaded_slice("campaign", CUSTOMER, DAY)
    if loaded is None or (loaded.run_id, loaded.state_version) != (final.current_run_id, final.version):
        assert load_partition(store, sink, warehouse, KEY).status == LOADED
        loaded = warehouse.loaded_slice("campaign", CUSTOMER, DAY)
    assert (loaded.run_id, loaded.state_version, loaded.rows) == (
        final.current_run_id,
        final.version,
        final.record_count,
    )


# ------------------------------------------------------------ 2. a failed load is retried


def _reconcile_tick(defs, instance) -> list[dg.RunRequest]:
    return list(evaluate_sensor(defs, instance, RECONCILE_SENSOR_NAME).run_requests or [])


def test_a_failed_load_is_found_and_retried_without_a_state_change(env, monkeypatch, capsys):
    settings, instance, defs, store = env
    sink = RawSink(str(settings.raw_root))
    run = _write(sink, 4)
    store.record_result(_ok(run, 4))
    gate = Gate(defs, instance)
    (request,) = gate.tick()
    # the fault: the raw run is unreachable while the gate's load runs (a storage outage)
    run_dir = sink.run_path(KEY, run)
    hidden = run_dir + ".away"
    os.rename(run_dir, hidden)
    assert not run_load(defs, instance, request)
    os.rename(hidden, run_dir)
    assert gate.tick() == [], "the cursor moved on and the run_key is used: the gate alone never retries"

    report = warehouse_status(
        [store.get(KEY)], ParquetWarehouse(str(settings.warehouse_root)), lambda keys: reasons_for(store, keys)
    )
    (row,) = report["partitions"]
    assert row["sync"] == "missing" and row["reason"] == LOAD_FAILED and run in row["error"]

    now = datetime.now(UTC)
    config = load_pipeline_config(settings.feeds_path, settings.customers_path)
    kwargs = dict(feeds=config.feeds, customers=[CUSTOMER], start_date=config.start_date, end_date=DAY)
    (stale,) = find_stale(store, now=now, **kwargs)
    assert (stale.reason, stale.due) == (LOAD_FAILED, False), "backing off after the failure"
    assert find_stale(store, now=now + timedelta(seconds=31), **kwargs)[0].due, "due after the backoff"
    assert _reconcile_tick(defs, instance) == [], "not due yet"

    # an operator asks now (gridcat warehouse reconcile): the daemon's reconcile sensor loads it
    monkeypatch.setenv("GRIDCAT_HOME", str(settings.home))
    monkeypatch.setenv("GRIDCAT_DB_URL", settings.db_url)
    assert main(["warehouse", "reconcile", "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["would_load"] == 1 and dry["partitions"][0]["reason"] == LOAD_FAILED
    assert main(["warehouse", "reconcile", "--json"]) == 0
    asked = json.loads(capsys.readouterr().out)
    assert asked["requested"] == 1 and asked["partitions"][0]["authoritative_run_id"] == run
    (retry,) = _reconcile_tick(defs, instance)
    assert retry.tags[run_id_tag("campaign")] == run and retry.run_key != request.run_key
    assert run_load(defs, instance, retry)
    loaded = ParquetWarehouse(str(settings.warehouse_root)).loaded_slice("campaign", CUSTOMER, DAY)
    assert (loaded.run_id, loaded.rows) == (run, 4)
    assert find_stale(store, now=now + timedelta(hours=1), **kwargs) == []
    assert store.get(KEY).version == 1, "retried without any state change"


def test_reconcile_run_loads_in_process(env, monkeypatch, capsys):
    settings, instance, defs, store = env
    sink = RawSink(str(settings.raw_root))
    run = _write(sink, 3)
    store.record_result(_ok(run, 3))  # never loaded: the gate's run never happened
    monkeypatch.setenv("GRIDCAT_HOME", str(settings.home))
    monkeypatch.setenv("GRIDCAT_DB_URL", settings.db_url)
    assert main(["warehouse", "status", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["partitions"]
    assert (row["sync"], row["reason"]) == ("missing", PENDING_LOAD)
    assert main(["warehouse", "reconcile", "--run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["loaded"] == 1 and out["failed"] == 0
    assert main(["warehouse", "reconcile", "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"partitions": [], "would_load": 0}


def test_the_reconcile_sensor_leaves_a_partition_with_a_load_in_flight_alone(env):
    settings, instance, defs, store = env
    run = _write(RawSink(str(settings.raw_root)), 2)
    store.record_result(_ok(run, 2))
    store_engine = store.engine
    from gridcat_pipelines.warehouse import load_log

    load_log.record_requested(store_engine, [KEY], datetime.now(UTC), due_now=True)
    (request,) = _reconcile_tick(defs, instance)
    job = defs.resolve_job_def("google_ads_warehouse_load")
    instance.create_run_for_job(
        job,
        run_id=None,
        tags={**request.tags, "dagster/partition": str(request.partition_key)},
        status=dg.DagsterRunStatus.NOT_STARTED,
        asset_selection=frozenset(request.asset_selection),
    )
    load_log.record_requested(store_engine, [KEY], datetime.now(UTC), due_now=True)
    assert _reconcile_tick(defs, instance) == [], "a load of the partition is queued already"


# --------------------------------------------------------- 3. one bad row wedges the gate


def test_a_day_not_begun_anywhere_or_a_run_id_from_the_future_is_invalid(store):
    now = datetime.now(UTC)
    latest = (now + timedelta(hours=14)).date()
    store.record_result(_ok(new_run_id(), 1, PartitionKey("google_ads", CUSTOMER, "campaign", latest)))
    for key, run in [
        (PartitionKey("google_ads", CUSTOMER, "campaign", latest + timedelta(days=1)), new_run_id()),
        (KEY, run_id_at(int((now + timedelta(days=365 * 3)).timestamp() * 1000))),
        (KEY, run_id_at(int((now + timedelta(minutes=6)).timestamp() * 1000))),
    ]:
        with pytest.raises(GridcatError) as err:
            store.record_results([_ok(new_run_id(), 1), _ok(run, 1, key)])
        assert err.value.code == INVALID_ARGUMENT
    assert store.get(KEY).version == 0, "a rejected batch changes nothing"
    store.record_result(_ok(run_id_at(int((now + timedelta(minutes=4)).timestamp() * 1000)), 1))  # clock skew


def test_cli_refuses_a_future_date(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRIDCAT_HOME", str(tmp_path))
    monkeypatch.delenv("GRIDCAT_DB_URL", raising=False)
    main(["db", "upgrade"])
    capsys.readouterr()
    future = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    code = main(
        [
            "states",
            "record",
            "--customer",
            CUSTOMER,
            "--query",
            "campaign",
            "--date",
            future,
            "--run-id",
            new_run_id(),
            "--status",
            "success",
            "--json",
        ]
    )
    error = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert code == 1 and error["code"] == INVALID_ARGUMENT and "logical_date" in error["message"]


def test_the_sensor_never_fails_a_tick_on_a_row_and_always_moves_its_cursor(env):
    """Rows written before the bounds existed (a store whose clock is far ahead stands in for
    them): a day the daily partitions do not have yet, a far-future run id, another source."""
    settings, instance, defs, store = env
    ahead = StateStore(store.engine, check_schema=False, clock=lambda: datetime.now(UTC) + timedelta(days=800))
    today = datetime.now(UTC).date()
    ahead.record_result(_ok(new_run_id(), 1, PartitionKey("google_ads", CUSTOMER, "campaign", today)))
    ahead.record_result(
        _ok(new_run_id(), 1, PartitionKey("google_ads", CUSTOMER, "campaign", today + timedelta(days=30)))
    )
    ahead.record_result(
        _ok(
            run_id_at(int((datetime.now(UTC) + timedelta(days=700)).timestamp() * 1000)),
            1,
            PartitionKey("other_source", CUSTOMER, "campaign", DAY),
        )
    )
    good = new_run_id()
    store.record_result(_ok(good, 1, PartitionKey("google_ads", CUSTOMER, "ad_group", DAY)))
    gate = Gate(defs, instance)
    requests = gate.tick()
    partitions_def = ingestion_partitions(load_pipeline_config(settings.feeds_path, settings.customers_path).start_date)
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        for request in requests:
            assert partitions_def.has_partition_key(str(request.partition_key)), request.partition_key
    assert [r.tags[run_id_tag("ad_group")] for r in requests] == [good]
    assert json.loads(gate.cursor)["seq"] == store.last_change_seq()
    assert gate.tick() == []


# ------------------------------------------------------- 4. re-point to a deleted run


def test_a_re_point_to_a_run_retention_deleted_is_refused(store, tmp_path):
    sink = RawSink(str(tmp_path / "raw"))
    r1, r2 = _write(sink, 1), _write(sink, 2)
    store.record_results([_ok(r1, 1), _ok(r2, 2)])
    report = apply_retention(store, sink, LeaseStore(store), older_than_days=0)
    assert [r["run_id"] for r in report.runs] == [r1]
    with pytest.raises(GridcatError) as err:
        store.set_authoritative(KEY, r1, expected_version=2)
    assert err.value.code == FAILED_PRECONDITION and "retention" in err.value.message
    assert store.get(KEY).current_run_id == r2


def test_retention_racing_a_re_point_never_deletes_the_authoritative_run(store, tmp_path):
    """The re-point arrives between retention's decision and the deletion of the files."""
    r1_holder: dict = {}

    class RePointingSink(RawSink):
        def delete_run(self, key, run_id):
            try:
                store.set_authoritative(key, run_id, store.get(key).version)
                r1_holder["repointed"] = True
            except GridcatError as exc:
                r1_holder["refused"] = exc.code
            super().delete_run(key, run_id)

    sink = RePointingSink(str(tmp_path / "raw"))
    r1, r2 = _write(sink, 1), _write(sink, 2)
    store.record_results([_ok(r1, 1), _ok(r2, 2)])
    apply_retention(store, sink, LeaseStore(store), older_than_days=0)
    assert r1_holder == {"refused": FAILED_PRECONDITION}
    state = store.get(KEY)
    assert state.current_run_id == r2
    assert sink.read_metadata(KEY, state.current_run_id).run_id == r2, "the authoritative run is on disk"


# ----------------------------------------------------------------- 5. the source is a key


def test_a_change_of_another_source_never_takes_the_load(env):
    settings, instance, defs, store = env
    mine = _write(RawSink(str(settings.raw_root)), 1)
    store.record_result(_ok(mine, 1))
    store.record_result(_ok(new_run_id(), 1, PartitionKey("bing_ads", CUSTOMER, "campaign", DAY)))
    (request,) = Gate(defs, instance).tick()
    assert request.tags[run_id_tag("campaign")] == mine and request.tags[SOURCE_TAG] == "google_ads"
    assert f"google_ads:campaign:{CUSTOMER}" in request.run_key
    assert run_load(defs, instance, request)
    assert ParquetWarehouse(str(settings.warehouse_root)).loaded_slice("campaign", CUSTOMER, DAY).run_id == mine


# ------------------------------------------------------------- found alongside


def test_the_loader_renews_its_lease_while_a_long_read_lasts(store, tmp_path):
    sink_root = str(tmp_path / "raw")
    run = _write(RawSink(sink_root), 3)
    store.record_result(_ok(run, 3))
    leases = LeaseStore(store)
    seen: list = []

    def slow_read():
        time.sleep(2.5)  # longer than the 1 s lease
        seen.extend(leases.list())

    outcome = load_partition(
        store,
        InterleavingSink(sink_root, slow_read),
        ParquetWarehouse(str(tmp_path / "wh")),
        KEY,
        leases=leases,
        lease_ttl_seconds=1,
    )
    assert outcome.status == LOADED
    assert len(seen) == 1 and seen[0].status == "ACTIVE", "the lease was still live after 2.5 s"
    assert leases.list() == []


def test_a_backfill_whose_run_died_before_its_first_batch_is_relaunched(sqlite_url):
    store = StateStore.open(sqlite_url)
    svc = FacetService(store)
    store.record_result(ValidationResult(KEY, new_run_id(), "success", "1", 1, tags={"env": "p"}))
    facet = svc.promote("env")
    resource = StateStoreResource(db_url=sqlite_url)

    @dg.op
    def killed_before_the_first_batch():
        raise RuntimeError("SIGKILL")

    @dg.job
    def dead_run():
        killed_before_the_first_batch()

    with dg.instance_for_test() as instance:

        def tick():
            result = tag_facet_backfill_sensor(
                dg.build_sensor_context(instance=instance, resources={"state_store": resource})
            )
            return [] if isinstance(result, dg.SkipReason) else list(result)

        (first,) = tick()
        job_id = first.tags[JOB_TAG]
        assert job_id == facet["job_id"]
        queued = instance.create_run_for_job(dead_run, tags=first.tags, status=dg.DagsterRunStatus.NOT_STARTED)
        assert tick() == [], "its run is queued: no second launch"
        instance.report_run_failed(queued)
        (again,) = tick()
        assert again.run_key != first.run_key, "a new run key: Dagster launches it again"
    store.close()


def test_two_retention_runs_deleting_the_same_run_both_finish(store, tmp_path):
    """Found by bench/chaos.py: the other retention deletes the run directory between this
    one's existence check and its delete."""

    class OtherRetentionFirst:
        def __init__(self):
            self._fs = pafs.LocalFileSystem()
            self.type_name = self._fs.type_name

        def __getattr__(self, name):
            return getattr(self._fs, name)

        def delete_dir(self, path):
            self._fs.delete_dir(path)  # the other retention run
            self._fs.delete_dir(path)  # this one: already gone

    writer = RawSink(str(tmp_path / "raw"))
    r1, r2 = _write(writer, 1), _write(writer, 2)
    store.record_results([_ok(r1, 1), _ok(r2, 2)])
    racing = RawSink(str(tmp_path / "raw"), filesystem=OtherRetentionFirst())
    report = apply_retention(store, racing, LeaseStore(store), older_than_days=0)
    assert [r["run_id"] for r in report.runs] == [r1]
    assert writer.read_metadata(KEY, r2).run_id == r2
