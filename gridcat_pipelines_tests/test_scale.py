"""Runs at the scale of thousands of accounts: customer groups (shards), many customer-days per
run with requests in flight, one failing customer never failing the others, and the daily
schedule and the gate packing their runs.

Dagster behaviour is tested through Dagster (real job runs on a temporary instance, the
schedule and sensor evaluated as the daemon would); figures (run counts, CPU, wall time) are
measured by ``bench/daily_pull.py``, not here.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.test_utils import create_run_for_test

from gridcat_pipelines.batch_ingest import PullTask, ingest_many
from gridcat_pipelines.cli.dagster_instance import ensure_instance
from gridcat_pipelines.config import Settings
from gridcat_pipelines.customer_groups import CustomerGroups, shard_of
from gridcat_pipelines.definitions import build_defs
from gridcat_pipelines.defs.gate.sensors import WAREHOUSE_JOB_NAME, load_requests
from gridcat_pipelines.defs.ingestion.assets import raw_key, validated_key
from gridcat_pipelines.defs.ingestion.jobs import ADS_API_TAG, INGEST_JOB_NAME
from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION, partition_key
from gridcat_pipelines.defs.ingestion.resources import AdsSourceResource
from gridcat_pipelines.defs.ingestion.run_scope import customer_groups, request_scope
from gridcat_pipelines.defs.ingestion.schedules import DAILY_PULL_SCHEDULE_NAME
from gridcat_pipelines.errors import GridcatError
from gridcat_pipelines.feeds.loader import ConfigError, load_pipeline_config
from gridcat_pipelines.gate import PlannedLoad
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.sources.faults import FaultPlan
from gridcat_pipelines.sources.synthetic import SyntheticSource
from gridcat_pipelines.state import PartitionKey, StateStore

REPO = Path(__file__).resolve().parents[1]
FEEDS = REPO / "config" / "google_apis.yaml"
ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Asia/Tokyo")
DAY = date(2026, 11, 20)
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _customers_yaml(path: Path, n: int) -> Path:
    """``n`` customers (ids 1000000000 + i) spread over :data:`ZONES`."""
    path.write_text(
        "customers:\n"
        + "".join(
            f"  - {{customer_id: '{1_000_000_000 + i}', name: Account {i}, time_zone: {ZONES[i % len(ZONES)]}, "
            "currency: USD}\n"
            for i in range(n)
        )
    )
    return path


def _feeds_yaml(path: Path, **pipeline: object) -> Path:
    """The shipped feeds with extra ``pipeline:`` settings."""
    text = FEEDS.read_text()
    extra = "".join(f"  {k}: {v}\n" for k, v in pipeline.items())
    path.write_text(text.replace("\npipeline:\n", "\npipeline:\n" + extra, 1))
    return path


# ----------------------------------------------------------------------------- customer groups


def test_groups_are_customers_up_to_the_threshold_then_stable_shards():
    few = CustomerGroups.of(["3", "1", "2"], shard_above=3, shards=4)
    assert not few.sharded and few.keys() == ["1", "2", "3"] and few.members("2") == ["2"]

    ids = [str(1_000_000_000 + i) for i in range(1000)]
    many = CustomerGroups.of(ids, shard_above=100, shards=64)
    assert many.sharded and len(many.keys()) == 64
    assert sorted(c for g in many.keys() for c in many.members(g)) == sorted(ids)
    # a customer's shard depends on its id alone: adding accounts never moves one
    more = CustomerGroups.of([*ids, *(str(2_000_000_000 + i) for i in range(500))], shard_above=100, shards=64)
    assert all(more.group_of(c) == many.group_of(c) == shard_of(c, 64) for c in ids)
    # a customer-id key (a partition from before sharding) still names its customer
    assert many.members("1234567890") == ["1234567890"]
    # the container the gate filters by holds unconfigured customers whose group has a partition
    present = many.has_partition([many.group_of(ids[0])])
    assert ids[0] in present and "9" * 10 in many.has_partition(many.keys())
    assert ids[1] in present or many.group_of(ids[1]) != many.group_of(ids[0])


def test_partitions_per_asset_stay_under_dagsters_recommendation_at_5000_accounts():
    groups = CustomerGroups.of([str(1_000_000_000 + i) for i in range(5000)])  # the defaults
    days_in_3_years = 3 * 365 + 1
    assert len(groups.keys()) * days_in_3_years <= 100_000


def test_pipeline_settings_are_checked(tmp_path):
    customers = _customers_yaml(tmp_path / "c.yaml", 3)
    config = load_pipeline_config(_feeds_yaml(tmp_path / "ok.yaml", shard_above=2, shards=8), customers)
    assert (config.shard_above, config.shards, config.customer_days_per_run) == (2, 8, 400)
    for key, value in {"shards": 0, "shard_above": -1, "customer_days_per_run": "many"}.items():
        with pytest.raises(ConfigError) as info:
            load_pipeline_config(_feeds_yaml(tmp_path / f"{key}.yaml", **{key: value}), customers)
        assert info.value.path == f"pipeline.{key}"
    with pytest.raises(GridcatError, match="GRIDCAT_ADS_MAX_IN_FLIGHT"):
        Settings.from_env({"GRIDCAT_HOME": str(tmp_path), "GRIDCAT_ADS_MAX_IN_FLIGHT": "0"})
    settings = Settings.from_env({"GRIDCAT_HOME": str(tmp_path), "GRIDCAT_SYNTHETIC_LATENCY_MS": "250"})
    assert settings.synthetic_latency_ms == 250.0


# ----------------------------------------------------------------------------- many customer-days, requests in flight


class _CountingSource(SyntheticSource):
    """The synthetic source, counting how many of its streams are open at once."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lock, self.open, self.peak = threading.Lock(), 0, 0

    def fetch(self, feed, customer, day, *, attempt=0):
        stream = super().fetch(feed, customer, day, attempt=attempt)

        def counted():
            with self.lock:
                self.open += 1
                self.peak = max(self.peak, self.open)
            try:
                yield from stream
            finally:
                with self.lock:
                    self.open -= 1

        return counted()


@pytest.fixture
def work(tmp_path):
    """The pieces of a run's work: the config (8 customers), a state store and a raw sink."""
    config = load_pipeline_config(FEEDS, _customers_yaml(tmp_path / "c.yaml", 8))
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}", upgrade=True)
    yield config, store, RawSink(str(tmp_path / "raw"))
    store.close()


def test_requests_overlap_up_to_the_cap(work):
    config, store, sink = work
    feed = config.feeds["campaign"]
    tasks = [PullTask(feed, c, DAY - timedelta(days=d)) for c in config.customers.values() for d in range(2)]
    source = _CountingSource(latency_ms=100)
    results = ingest_many(source, sink, store, tasks, max_in_flight=4)
    assert source.peak == 4  # several requests in flight, never more than the cap
    assert [r.task for r in results] == tasks and all(r.verdict == "passed" for r in results)
    assert all(store.get(r.task.key).current_run_id == r.meta.run_id for r in results)


def test_one_failing_customer_never_fails_the_others(work):
    config, store, sink = work
    customers = list(config.customers.values())
    crashed, flaky, bad = customers[0].customer_id, customers[1].customer_id, customers[2].customer_id
    forced = {
        (crashed, "campaign", DAY.isoformat()): "crash_mid_write",
        (flaky, "campaign", DAY.isoformat()): "transient_error",
        (bad, "campaign", DAY.isoformat()): "negative_cost",
    }
    source = SyntheticSource(faults=FaultPlan(seed=0, rate=0.0, forced=forced))
    tasks = [PullTask(config.feeds["campaign"], c, DAY) for c in customers]
    slept: list[float] = []
    results = {r.task.customer.customer_id: r for r in ingest_many(source, sink, store, tasks, sleep=slept.append)}
    # the crash is this customer's error; its raw run stays incomplete and no state is written
    assert results[crashed].verdict == "error" and "SourceCrash" in results[crashed].error
    assert store.get(results[crashed].task.key).status == "pending"
    # the transient error is retried with a new raw run after a backoff
    assert results[flaky].verdict == "passed" and results[flaky].attempts == 2 and slept == [0.5]
    # a validation failure is a verdict, not an error
    assert results[bad].verdict == "failed" and store.get(results[bad].task.key).status == "failed"
    others = [c.customer_id for c in customers[3:]]
    assert all(results[c].verdict == "passed" and store.get(results[c].task.key).status == "success" for c in others)


# ----------------------------------------------------------------------------- a sharded run through Dagster


@pytest.fixture
def sharded(tmp_path):
    """Definitions and an instance for 6 customers in 2 shards (shard_above 2)."""
    settings = Settings.from_env(
        {
            "GRIDCAT_HOME": str(tmp_path / "home"),
            "GRIDCAT_FEEDS_CONFIG": str(_feeds_yaml(tmp_path / "feeds.yaml", shard_above=2, shards=2)),
            "GRIDCAT_CUSTOMERS_CONFIG": str(_customers_yaml(tmp_path / "customers.yaml", 6)),
        }
    )
    StateStore.open(settings.db_url, upgrade=True).close()
    instance = ensure_instance(settings)
    config = settings.pipeline_config()
    groups = customer_groups(config)
    instance.add_dynamic_partitions(CUSTOMERS_PARTITION, groups.keys())
    yield settings, instance, config, groups
    instance.dispose()


def _run_range(defs, instance, start: str, end: str, feeds: list[str], tags: dict | None = None):
    selection = [k for f in feeds for k in (raw_key(f), validated_key(f))]
    return defs.resolve_job_def(INGEST_JOB_NAME).execute_in_process(
        instance=instance,
        tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end, **(tags or {})},
        asset_selection=selection,
        raise_on_error=False,
        run_config=QUIET,
    )


def test_a_sharded_range_run_reports_each_customer_and_isolates_a_failure(sharded):
    settings, instance, config, groups = sharded
    assert groups.keys() == ["shard-000", "shard-001"]
    customers = sorted(config.customers)
    crashed, bad = customers[0], customers[1]
    forced = {f"{crashed}|campaign|{DAY}": "crash_mid_write", f"{bad}|campaign|{DAY}": "negative_cost"}
    defs = build_defs(settings, ads_source=AdsSourceResource(forced_faults=forced))
    days = [DAY - timedelta(days=1), DAY]
    result = _run_range(defs, instance, f"shard-000|{days[0]}", f"shard-001|{days[-1]}", ["campaign", "ad_group"])
    # one run, one step per feed; the crashed customer-day fails its step at the end, named
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert [e.step_key for e in failures] == ["ingest_campaign"]
    assert (
        f"pull of campaign for {crashed} on {DAY} failed"
        in failures[0].event_specific_data.user_failure_data.description
    )
    # every other customer-day of every feed was pulled, validated and recorded all the same
    store = StateStore.open(settings.db_url)
    for feed in ("campaign", "ad_group"):
        for customer_id in customers:
            for day in days:
                state = store.get(PartitionKey("google_ads", customer_id, feed, day))
                if feed == "campaign" and day == DAY and customer_id == crashed:
                    assert state.status == "pending"
                elif feed == "campaign" and day == DAY and customer_id == bad:
                    assert state.status == "failed"
                else:
                    assert state.status == "success", (feed, customer_id, day, state.error_message)
    # the crashed and the failing customers' partition: its materialization and checks name them
    partition = str(partition_key(groups.group_of(crashed), DAY))
    bad_partition = str(partition_key(groups.group_of(bad), DAY))

    def verdicts(partition: str) -> dict:
        (record,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=validated_key("campaign"), asset_partitions=[partition]), limit=5
        ).records
        return record.asset_materialization.metadata["verdicts"].value

    assert set(verdicts(partition)) == set(groups.members(groups.group_of(crashed))) - {crashed}
    assert verdicts(bad_partition)[bad]["verdict"] == "failed"
    pulled = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(raw_key("campaign"), "pulled"), limit=20
    )
    failed_pull = [r for r in pulled if r.partition == partition]
    assert failed_pull and failed_pull[0].status.value == "FAILED"
    rule = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(validated_key("campaign"), "cost_non_negative"), limit=20
    )
    mine = [r for r in rule if r.partition == bad_partition]
    assert mine and mine[0].status.value == "FAILED"
    evaluation = mine[0].event.dagster_event.event_specific_data
    assert bad in evaluation.metadata["failures"].value
    # and one command re-pulls one customer-day: the group's partition, narrowed by a tag
    defs = build_defs(settings)
    again = defs.resolve_job_def(INGEST_JOB_NAME).execute_in_process(
        instance=instance,
        partition_key=partition_key(groups.group_of(crashed), DAY),
        tags={"gridcat/customers": crashed},
        asset_selection=[raw_key("campaign"), validated_key("campaign")],
        run_config=QUIET,
    )
    assert again.success and store.get(PartitionKey("google_ads", crashed, "campaign", DAY)).status == "success"
    assert again.dagster_run.tags[ADS_API_TAG] == "synthetic"
    store.close()


# ----------------------------------------------------------------------------- the schedule and the gate, packed


@pytest.mark.slow
def test_the_daily_schedule_packs_5000_accounts_into_few_runs(tmp_path):
    settings = Settings.from_env(
        {
            "GRIDCAT_HOME": str(tmp_path / "home"),
            "GRIDCAT_CUSTOMERS_CONFIG": str(_customers_yaml(tmp_path / "customers.yaml", 5000)),
        }
    )
    instance = ensure_instance(settings)
    config = settings.pipeline_config()
    groups = customer_groups(config)
    instance.add_dynamic_partitions(CUSTOMERS_PARTITION, groups.keys())
    defs = build_defs(settings)
    schedule = defs.resolve_schedule_def(DAILY_PULL_SCHEDULE_NAME)
    partitions_def = defs.resolve_job_def(INGEST_JOB_NAME).partitions_def
    covered: dict[tuple[str, date], int] = {}
    requests = []
    start = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    for hour in range(48):  # two days of hourly ticks; the second is a steady day
        with dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=start + timedelta(hours=hour),
            repository_def=defs.get_repository_def(),
        ) as ctx:
            tick = schedule.evaluate_tick(ctx).run_requests or []
        for request in tick:  # launched, as the daemon would: later ticks see their tags
            create_run_for_test(
                instance, job_name=INGEST_JOB_NAME, tags={**request.tags, "dagster/run_key": request.run_key}
            )
            if hour < 24:
                continue  # the first day starts cold: every zone's current window at once
            for part in request_scope(config, partitions_def, instance, request):
                for customer_id in part.customer_ids:
                    covered[(customer_id, part.day)] = covered.get((customer_id, part.day), 0) + 1
        requests += tick if hour >= 24 else []
    # on a steady day every account's window (its generation and 3 earlier days) once
    assert len(covered) == 5000 * 4 and set(covered.values()) == {1}
    # in runs of at most customer_days_per_run: 20,000 customer-days in about 50 runs, not 20,000
    # (each zone's customers at the hour its day settles, packed by whole shards: a run holds up
    # to the cap, or one shard's customers of the zone when they alone hold more)
    per_zone = [max(1, round(20_000 / len(ZONES) / config.customer_days_per_run)), len(groups.keys())]
    assert len(requests) <= len(ZONES) * max(per_zone) <= 100
    instance.dispose()


def test_the_gate_packs_its_loads_like_the_ingest_runs():
    ids = [str(1_000_000_000 + i) for i in range(1000)]
    groups = CustomerGroups.of(ids, shard_above=100, shards=64)
    loads = [
        PlannedLoad(PartitionKey("google_ads", c, feed, DAY - timedelta(days=d)), f"run-{c}-{d}", 1)
        for c in ids
        for d in range(2)
        for feed in ("campaign", "ad_group")
    ]
    requests = load_requests(loads, "load|0-1|", groups, groups.keys(), customer_days_per_run=400)
    assert len(requests) <= 2000 / 400 + 1  # 2,000 customer-days with loads, at most 400 a run (whole shards)
    assert all(r.partition_key_range is not None for r in requests)
    assert len({r.run_key for r in requests}) == len(requests)
    for request in requests:
        start, end = request.partition_key_range.start, request.partition_key_range.end
        shards = groups.keys()[groups.keys().index(start.split("|")[0]) : groups.keys().index(end.split("|")[0]) + 1]
        assert sum(len(groups.members(s)) for s in shards) * 2 <= 400
    # one customer-day alone: the run the gate planned travels with it, as before
    (single,) = load_requests(loads[:2], "load|0-1|", groups, groups.keys(), customer_days_per_run=400)
    assert single.tags["gridcat/run_id.campaign"] == f"run-{ids[0]}-0" and single.tags["gridcat/customers"] == ids[0]
    assert str(single.partition_key) == f"{groups.group_of(ids[0])}|{DAY}"


def test_a_packed_load_run_loads_exactly_the_authoritative_runs_of_its_range(sharded):
    settings, instance, config, groups = sharded
    defs = build_defs(settings)
    _run_range(defs, instance, f"shard-000|{DAY}", f"shard-001|{DAY}", ["campaign"])
    store = StateStore.open(settings.db_url)
    keys = [PartitionKey("google_ads", c, "campaign", DAY) for c in sorted(config.customers)]
    loads = [PlannedLoad(k, store.get(k).current_run_id, store.get(k).version) for k in keys]
    (request,) = load_requests(loads, "load|t|", groups, groups.keys(), config.customer_days_per_run)
    result = defs.resolve_job_def(WAREHOUSE_JOB_NAME).execute_in_process(
        instance=instance, tags=request.tags, asset_selection=request.asset_selection, run_config=QUIET
    )
    assert result.success
    from gridcat_pipelines.warehouse.parquet_target import ParquetWarehouse

    warehouse = ParquetWarehouse(str(settings.warehouse_root))
    for key in keys:
        loaded = warehouse.loaded_slice("campaign", key.customer_id, DAY)
        assert loaded is not None and loaded.run_id == store.get(key).current_run_id
    # one materialization per shard partition, naming each customer's loaded run
    for group in groups.keys():
        (mat,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(["google_ads", "warehouse", "campaign"]),
                asset_partitions=[str(partition_key(group, DAY))],
            ),
            limit=5,
        ).records
        assert set(mat.asset_materialization.metadata["loaded"].value) == set(groups.members(group))
    store.close()


def test_the_gate_leaves_a_partition_being_ingested_to_reconcile_until_the_run_ends(env):
    """A gate tick per 15 s would request a load run per tick of a long ingest run; the gate
    leaves the partitions an ingest run still covers to reconcile, which requests them (due at
    once) on its first tick after the run ended."""
    from gridcat_pipelines.cli.local_runs import evaluate_sensor
    from gridcat_pipelines.defs.gate.sensors import RECONCILE_SENSOR_NAME
    from gridcat_pipelines.state import ValidationResult
    from gridcat_pipelines.warehouse import load_log
    from gridcat_pipelines_tests.gate_helpers import CUSTOMER, Gate

    settings, instance, defs, store = env
    key = PartitionKey("google_ads", CUSTOMER, "campaign", DAY)
    ingest = create_run_for_test(
        instance,
        job_name=INGEST_JOB_NAME,
        status=dg.DagsterRunStatus.STARTED,
        tags={"dagster/partition": str(partition_key(CUSTOMER, DAY))},
    )
    run_id = f"01a24bf2-e840-71a1-b9e3-{1:012d}"
    store.record_result(ValidationResult(key, run_id, "success", "1", 5))
    assert Gate(defs, instance).tick() == []  # the ingest run still covers the partition
    (record,) = load_log.load_records(store.engine, [key]).values()
    assert record.last_outcome == load_log.OUTCOME_REQUESTED and record.due_at is not None

    def reconcile() -> list[dg.RunRequest]:
        return list(evaluate_sensor(defs, instance, RECONCILE_SENSOR_NAME).run_requests or [])

    assert reconcile() == []  # still ingesting
    instance.report_dagster_event(  # the ingest run ends
        dg.DagsterEvent(dg.DagsterEventType.RUN_SUCCESS.value, job_name=INGEST_JOB_NAME), run_id=ingest.run_id
    )
    assert instance.get_run_by_id(ingest.run_id).status == dg.DagsterRunStatus.SUCCESS
    (request,) = reconcile()  # due at once, not after the 2 min grace of a change the gate never saw
    assert request.tags["gridcat/run_id.campaign"] == run_id
