"""The ingestion pipeline through Dagster: real job runs on a real (temporary) instance.

One run per customer x day pulls every feed; each feed's faults must fail exactly its rule,
per partition, in the state and in the asset checks; a re-pull is a new run that moves the
authoritative run; a crash mid-write never becomes success; transient errors are retried.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest
from dagster._core.test_utils import create_run_for_test

from gridcat_pipelines.cli.dagster_instance import ensure_instance
from gridcat_pipelines.config import Settings
from gridcat_pipelines.definitions import build_defs
from gridcat_pipelines.defs.ingestion.assets import raw_key, validated_key
from gridcat_pipelines.defs.ingestion.jobs import INGEST_JOB_NAME
from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION, partition_key
from gridcat_pipelines.defs.ingestion.resources import AdsSourceResource
from gridcat_pipelines.defs.ingestion.run_scope import request_scope
from gridcat_pipelines.defs.ingestion.schedules import DAILY_PULL_CRON, DAILY_PULL_SCHEDULE_NAME
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

    # the transient error is retried in the step (a new raw run); only the crashed feed fails
    failed_steps = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failed_steps == ["ingest_campaign"]
    assert store.get(_key("ad_group", day)).status == "success"
    assert len(sink.list_runs(_key("ad_group", day), include_incomplete=True)) >= 1

    # re-pull the crashed partition: a new, complete run becomes authoritative
    assert job.execute_in_process(
        partition_key=partition_key(CUSTOMER, day),
        instance=instance,
        asset_selection=selection[:2],
        run_config=QUIET,
    ).success
    state = store.get(_key("campaign", day))
    assert state.status == "success" and state.current_run_id > crashed[0].run_id


# ---------------------------------------------------------------- the daily pull schedule, per account-local day

HONOLULU, UTC_ACCOUNT, TONGA, UNCONFIGURED = "1000000010", "1000000000", "1000000013", "9999999999"
ZONES = {HONOLULU: "Pacific/Honolulu", UTC_ACCOUNT: "UTC", TONGA: "Pacific/Tongatapu"}  # UTC-10, UTC, UTC+13


@pytest.fixture
def zoned(tmp_path):
    """Definitions and an instance for three accounts in UTC-10, UTC and UTC+13 (shipped feeds,
    settle_hours 3, lookback_days 3), plus a customer partition no customer config has."""
    customers = tmp_path / "customers.yaml"
    customers.write_text(
        "customers:\n"
        + "".join(
            f"  - {{customer_id: '{cid}', name: Account {zone}, time_zone: {zone}, currency: USD}}\n"
            for cid, zone in ZONES.items()
        )
    )
    zoned_settings = Settings.from_env(
        {"GRIDCAT_HOME": str(tmp_path / "zoned_home"), "GRIDCAT_CUSTOMERS_CONFIG": str(customers)}
    )
    StateStore.open(zoned_settings.db_url, upgrade=True).close()
    inst = ensure_instance(zoned_settings)
    inst.add_dynamic_partitions(CUSTOMERS_PARTITION, [*ZONES, UNCONFIGURED])
    yield build_defs(zoned_settings), inst
    inst.dispose()


def _tick(defs, instance, tick: datetime) -> dg.ScheduleExecutionData:
    """The daily pull schedule evaluated at ``tick``, as the daemon would."""
    schedule = defs.resolve_schedule_def(DAILY_PULL_SCHEDULE_NAME)
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    ) as ctx:
        return schedule.evaluate_tick(ctx)


def _days_by_customer(defs, instance, requests) -> dict[str, list[date]]:
    """Each customer's days the runs of ``requests`` cover (newest first)."""
    job = defs.resolve_job_def(INGEST_JOB_NAME)
    config = defs.resources["pipeline_config"].config
    days: dict[str, list[date]] = {}
    for request in requests:
        for part in request_scope(config, job.partitions_def, instance, request):
            for customer_id in part.customer_ids:
                days.setdefault(customer_id, []).append(part.day)
    return {c: sorted(d, reverse=True) for c, d in days.items()}


def _launched(instance, requests) -> None:
    """Record a run per request, with its tags, as the daemon's launch would."""
    for request in requests:
        create_run_for_test(
            instance, job_name=INGEST_JOB_NAME, tags={**request.tags, "dagster/run_key": request.run_key}
        )


def test_schedule_is_hourly_and_its_window_is_the_account_local_one(zoned):
    defs, _ = zoned
    schedule = defs.resolve_schedule_def(DAILY_PULL_SCHEDULE_NAME)
    assert schedule.cron_schedule == DAILY_PULL_CRON == "0 * * * *" and schedule.execution_timezone == "UTC"


def test_western_account_does_not_get_yesterday_utc_at_06_utc(zoned):
    defs, instance = zoned
    tick = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    data = _tick(defs, instance, tick)
    got = _days_by_customer(defs, instance, data.run_requests)
    yesterday = date(2026, 11, 25)  # in UTC; 2026-11-26 06:00 UTC is 2026-11-25 20:00 in Honolulu
    window = [yesterday - timedelta(days=i) for i in range(4)]
    assert got[UTC_ACCOUNT] == window
    assert got[TONGA] == window  # Tonga's 25th ended at 11:00 UTC on the 25th, its 26th is not over
    assert got[HONOLULU] == [d - timedelta(days=1) for d in window]  # its 24th and 3 days before
    assert yesterday not in got[HONOLULU]
    assert UNCONFIGURED not in got  # no customer config: never pulled
    # one run per generation here: UTC and Tonga share theirs (a range of both), Honolulu has its own
    by_zones = {r.tags["gridcat/zones"]: r for r in data.run_requests}
    assert sorted(by_zones) == ["Pacific/Honolulu", "Pacific/Tongatapu,UTC"]
    for zones, request in by_zones.items():
        generation = request.tags["gridcat/pull_generation"]
        assert request.tags[f"gridcat/pull_generation.{generation}"] == zones
        assert request.partition_key_range is not None  # 4 days (and 2 customers): a partition range
    honolulu = by_zones["Pacific/Honolulu"].partition_key_range
    assert (honolulu.start, honolulu.end) == (f"{HONOLULU}|{window[-1] - timedelta(days=1)}", f"{HONOLULU}|{window[1]}")
    # the same tick twice asks for the same runs (Dagster dedupes a re-evaluated tick by run_key)
    again = _tick(defs, instance, tick)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in data.run_requests]
    assert len({r.run_key for r in data.run_requests}) == len(data.run_requests) == 2


def test_each_window_is_requested_once_per_account_local_day(zoned):
    """Dagster dedupes a schedule's run keys within one tick only: later ticks of the same
    generation ask for nothing; a new generation asks for its whole window, lookback included."""
    defs, instance = zoned
    first = _tick(defs, instance, datetime(2026, 11, 26, 6, 0, tzinfo=UTC)).run_requests
    _launched(instance, first)
    for hour in (6, 7, 12):  # the same tick again (after its runs launched), and later ticks of the day
        later = _tick(defs, instance, datetime(2026, 11, 26, hour, 0, tzinfo=UTC))
        assert not later.run_requests and "requested already" in later.skip_message
    # 13:00 UTC: Honolulu's 25th ended at 10:00 UTC, + 3 h settle: its new generation, and only that
    at_13 = _tick(defs, instance, datetime(2026, 11, 26, 13, 0, tzinfo=UTC)).run_requests
    assert _days_by_customer(defs, instance, at_13) == {
        HONOLULU: [date(2026, 11, 25) - timedelta(days=i) for i in range(4)]
    }
    # a missed tick is made up by the next one: nobody launched the 13:00 runs, 14:00 asks again
    at_14 = _tick(defs, instance, datetime(2026, 11, 26, 14, 0, tzinfo=UTC)).run_requests
    assert [r.run_key for r in at_14] == [r.run_key for r in at_13]
    _launched(instance, at_14)
    # 2026-11-27 00:00 UTC: the 26th's partition exists; Tonga's 26th ended long ago, UTC's needs 3 h
    midnight = _tick(defs, instance, datetime(2026, 11, 27, 0, 0, tzinfo=UTC)).run_requests
    assert _days_by_customer(defs, instance, midnight) == {
        TONGA: [date(2026, 11, 26) - timedelta(days=i) for i in range(4)]
    }
    _launched(instance, midnight)
    at_03 = _tick(defs, instance, datetime(2026, 11, 27, 3, 0, tzinfo=UTC)).run_requests
    assert _days_by_customer(defs, instance, at_03) == {
        UTC_ACCOUNT: [date(2026, 11, 26) - timedelta(days=i) for i in range(4)]
    }


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
