"""The ingestion pipeline through Dagster: real job runs on a real (temporary) instance.

One run per customer x day pulls every feed; each feed's faults must fail exactly its rule,
per partition, in the state and in the asset checks; a re-pull is a new run that moves the
authoritative run; a crash mid-write never becomes success; transient errors are retried.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from gridcat_pipelines.cli.dagster_instance import ensure_instance
from gridcat_pipelines.config import Settings
from gridcat_pipelines.definitions import build_defs
from gridcat_pipelines.defs.ingestion.assets import raw_key, validated_key
from gridcat_pipelines.defs.ingestion.jobs import INGEST_JOB_NAME
from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION, partition_key
from gridcat_pipelines.defs.ingestion.resources import AdsSourceResource
from gridcat_pipelines.defs.ingestion.schedules import pull_dates
from gridcat_pipelines.defs.ingestion.sensors import sync_customer_partitions
from gridcat_pipelines.defs.resources import PipelineConfigResource
from gridcat_pipelines.feeds.loader import load_pipeline_config
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.sources.faults import FAULT_RULE
from gridcat_pipelines.state import PartitionKey, StateStore
from gridcat_pipelines.validation.rules import rules_for
from gridcat_pipelines.validation.validator import validate_run

CUSTOMER = "1234567890"
DAY = date(2026, 11, 20)
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}

# one fault per feed, each applicable to that feed, all in one partition
FAULTS_BY_FEED = {
    "campaign": "negative_cost",
    "ad_group": "duplicate_primary_key",
    "keyword_view": "wrong_date",
    "search_term_view": "mixed_currency",
    "geographic_view": "invalid_enum",
    "account": "missing_column",
    "click_view": "wrong_type",
}


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env({"GRIDCAT_HOME": str(tmp_path / "home")})


@pytest.fixture
def instance(settings):
    StateStore.open(settings.db_url, upgrade=True).close()
    inst = ensure_instance(settings)
    inst.add_dynamic_partitions(CUSTOMERS_PARTITION, [CUSTOMER, "2345678901"])
    yield inst
    inst.dispose()


def _job(settings, **source):
    return build_defs(settings, ads_source=AdsSourceResource(**source)).resolve_job_def(INGEST_JOB_NAME)


def _key(feed: str, day: date = DAY) -> PartitionKey:
    return PartitionKey("google_ads", CUSTOMER, feed, day)


def _check_status(instance, feed: str, rule: str, day: date = DAY) -> str:
    records = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(validated_key(feed), rule), limit=50
    )
    mine = [r for r in records if r.partition == str(partition_key(CUSTOMER, day))]
    return mine[0].status.value if mine else "NONE"


def test_definitions_hold_every_feed_and_partitioned_checks(settings):
    defs = build_defs(settings)
    config = load_pipeline_config(settings.feeds_path, settings.customers_path)
    assert len(config.feeds) >= 6
    graph = defs.resolve_asset_graph()
    for name, feed in config.feeds.items():
        assert graph.has(raw_key(name)) and graph.has(validated_key(name))
        checks = {k.name for k in graph.asset_check_keys if k.asset_key == validated_key(name)}
        assert checks == set(rules_for(feed))
    assert defs.resolve_job_def(INGEST_JOB_NAME)


def test_clean_partition_succeeds_with_checks_per_partition(settings, instance):
    result = _job(settings).execute_in_process(
        partition_key=partition_key(CUSTOMER, DAY), instance=instance, run_config=QUIET
    )
    assert result.success
    store = StateStore.open(settings.db_url)
    config = load_pipeline_config(settings.feeds_path, settings.customers_path)
    sink = RawSink(str(settings.raw_root))
    for name, feed in config.feeds.items():
        state = store.get(_key(name))
        assert state.status == "success", (name, state.error_message)
        runs = sink.list_runs(_key(name))
        assert [r.run_id for r in runs] == [state.current_run_id]
        assert state.tags == config.customers[CUSTOMER].tags
        assert state.record_count == sink.read_metadata(_key(name), state.current_run_id).record_count
        for rule in rules_for(feed):
            assert _check_status(instance, name, rule) == "SUCCEEDED", (name, rule)
    mat = instance.get_latest_materialization_event(raw_key("campaign"))
    meta = mat.asset_materialization.metadata
    assert {"run_id", "path", "rows", "bytes", "schema_version", "summary"} <= set(meta)
    assert mat.asset_materialization.partition == str(partition_key(CUSTOMER, DAY))


def test_each_fault_fails_exactly_its_rule_then_a_repull_succeeds(settings, instance):
    forced = {f"{CUSTOMER}|{feed}|{DAY}": kind for feed, kind in FAULTS_BY_FEED.items()}
    job = _job(settings, forced_faults=forced)
    assert job.execute_in_process(
        partition_key=partition_key(CUSTOMER, DAY), instance=instance, run_config=QUIET
    ).success
    store = StateStore.open(settings.db_url)
    config = load_pipeline_config(settings.feeds_path, settings.customers_path)
    first_runs = {}
    for feed, kind in FAULTS_BY_FEED.items():
        rule = FAULT_RULE[kind]
        state = store.get(_key(feed))
        assert state.status == "failed", feed
        assert state.error_message.split(":")[0] == rule, (feed, state.error_message)
        assert ";" not in state.error_message, f"{feed}: more than one rule failed: {state.error_message}"
        assert _check_status(instance, feed, rule) == "FAILED"
        others = {_check_status(instance, feed, r) for r in rules_for(config.feeds[feed]) if r != rule}
        assert others <= {"SUCCEEDED", "SKIPPED", "PLANNED"}, (feed, others)
        first_runs[feed] = state.current_run_id

    # the same partition again: a new raw run per feed, faults heal on the second pull
    assert job.execute_in_process(
        partition_key=partition_key(CUSTOMER, DAY), instance=instance, run_config=QUIET
    ).success
    for feed in FAULTS_BY_FEED:
        state = store.get(_key(feed))
        assert state.status == "success", (feed, state.error_message)
        assert state.current_run_id > first_runs[feed]
        assert state.attempt_count == 2 and state.version == 2
        assert _check_status(instance, feed, FAULT_RULE[FAULTS_BY_FEED[feed]]) == "SUCCEEDED"
    # the other customer's partition of the same day was never touched
    assert not store.get(PartitionKey("google_ads", "2345678901", "campaign", DAY)).exists


def test_crash_mid_write_never_becomes_success_and_transient_errors_retry(settings, instance):
    day = DAY - timedelta(days=1)
    forced = {f"{CUSTOMER}|campaign|{day}": "crash_mid_write", f"{CUSTOMER}|ad_group|{day}": "transient_error"}
    job = _job(settings, forced_faults=forced)
    selection = [raw_key("campaign"), validated_key("campaign"), raw_key("ad_group"), validated_key("ad_group")]
    result = job.execute_in_process(
        partition_key=partition_key(CUSTOMER, day),
        instance=instance,
        asset_selection=selection,
        raise_on_error=False,
        run_config=QUIET,
    )
    assert not result.success
    store = StateStore.open(settings.db_url)
    sink = RawSink(str(settings.raw_root))
    config = load_pipeline_config(settings.feeds_path, settings.customers_path)

    crashed = sink.list_runs(_key("campaign", day), include_incomplete=True)
    assert len(crashed) == 1 and not crashed[0].complete
    assert store.get(_key("campaign", day)).status == "pending"
    report = validate_run(sink, _key("campaign", day), crashed[0].run_id, config.feeds["campaign"])
    assert not report.passed and report.result("metadata_consistency").failed

    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retried and "ad_group" in retried[0].step_key
    assert store.get(_key("ad_group", day)).status == "success"

    # re-pull the crashed partition: a new, complete run becomes authoritative
    assert job.execute_in_process(
        partition_key=partition_key(CUSTOMER, day),
        instance=instance,
        asset_selection=selection[:2],
        run_config=QUIET,
    ).success
    state = store.get(_key("campaign", day))
    assert state.status == "success" and state.current_run_id > crashed[0].run_id


def test_schedule_requests_yesterday_plus_lookback_for_every_customer(settings, instance):
    defs = build_defs(settings)
    schedule = defs.resolve_schedule_def("google_ads_daily_pull")
    config = load_pipeline_config(settings.feeds_path, settings.customers_path)
    tick = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    ) as ctx:
        requests = list(schedule.evaluate_tick(ctx).run_requests)
    want_days = [date(2026, 11, 25) - timedelta(days=i) for i in range(config.lookback_days + 1)]
    assert pull_dates(tick.date(), config.lookback_days, config.start_date) == want_days
    got = sorted(str(r.partition_key) for r in requests)
    assert got == sorted(str(partition_key(c, d)) for c in (CUSTOMER, "2345678901") for d in want_days)
    assert len({r.run_key for r in requests}) == len(requests)


def test_customer_sync_sensor_adds_configured_customers(settings, tmp_path):
    inst = dg.DagsterInstance.ephemeral()
    config = load_pipeline_config(settings.feeds_path, settings.customers_path)
    resource = PipelineConfigResource(feeds_path=str(settings.feeds_path), customers_path=str(settings.customers_path))
    with dg.build_sensor_context(instance=inst, resources={"pipeline_config": resource}) as ctx:
        result = sync_customer_partitions(ctx)
    assert isinstance(result, dg.SensorResult)
    (request,) = result.dynamic_partitions_requests
    assert sorted(request.partition_keys) == sorted(config.customers)
    inst.add_dynamic_partitions(CUSTOMERS_PARTITION, list(config.customers))
    with dg.build_sensor_context(instance=inst, resources={"pipeline_config": resource}) as ctx:
        assert isinstance(sync_customer_partitions(ctx), dg.SkipReason)
