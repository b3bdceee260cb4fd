"""The retention jobs, run through Dagster on a temporary instance. ``raw_retention`` deletes a
superseded raw run and keeps the authoritative one. ``warehouse_retention`` expires old Iceberg
snapshots and deletes unreferenced files as ``gridcat retention`` does, says it has nothing to do
on the other targets, and refuses an age that could break a load in flight."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from gridcat_pipelines.config import Settings
from gridcat_pipelines.definitions import build_defs
from gridcat_pipelines.defs.retention.jobs import RETENTION_JOB_NAME, WAREHOUSE_RETENTION_JOB_NAME
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.run_ids import new_run_id
from gridcat_pipelines.state import PartitionKey, StateStore, ValidationResult
from gridcat_pipelines.warehouse.iceberg_target import IcebergWarehouse
from gridcat_pipelines_tests.test_iceberg_warehouse import CUSTOMER, DAY, age_table_files, rows
from gridcat_pipelines_tests.test_leases_retention import _runs

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
OP = "apply_iceberg_retention"


def _job(tmp_path: Path, kind: str) -> dg.JobDefinition:
    env = {"GRIDCAT_HOME": str(tmp_path), "GRIDCAT_WAREHOUSE": kind}
    if kind == "postgres":  # never connected to: the op stops at the kind
        env["GRIDCAT_WAREHOUSE_URL"] = "postgresql://gridcat@127.0.0.1:1/warehouse"
    settings = Settings.from_env(env)
    return build_defs(settings).get_job_def(WAREHOUSE_RETENTION_JOB_NAME)


def _run(job: dg.JobDefinition, instance: dg.DagsterInstance, **config) -> dg.ExecuteInProcessResult:
    return job.execute_in_process(
        run_config={**QUIET, "ops": {OP: {"config": config}}}, instance=instance, raise_on_error=False
    )


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = [e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"]
    return {k: v.value for k, v in event.step_output_data.metadata.items()}


def test_the_job_expires_snapshots_and_sweeps_old_unreferenced_files(tmp_path):
    wh = IcebergWarehouse.open(tmp_path)
    for version in range(1, 4):
        wh.replace_slice("campaign", CUSTOMER, DAY, rows(version), new_run_id(), state_version=version)
    job = _job(tmp_path, "iceberg")
    with dg.instance_for_test() as instance:
        first = _run(job, instance, snapshots_older_than_days=0.0)
        assert first.success
        meta = _metadata(first)
        assert meta["expired_snapshots"] >= 2 and meta["removed_files"] == 0, "young files stay"
        assert len(IcebergWarehouse.open(tmp_path).table("campaign").snapshots()) == 1

        age_table_files(wh, days=2)
        dry = _metadata(_run(job, instance, orphans_older_than_days=1.0, dry_run=True))
        assert dry["dry_run"] and dry["removed_files"] >= 2
        done = _run(job, instance, orphans_older_than_days=1.0)
        assert done.success
        meta = _metadata(done)
        assert (meta["removed_files"], meta["removed_bytes"]) == (dry["removed_files"], dry["removed_bytes"])
        assert meta["report"]["warehouse_orphans"]["removed"]["campaign"]["files"] == meta["removed_files"]
    assert IcebergWarehouse.open(tmp_path).read_slice("campaign", CUSTOMER, DAY).num_rows == 3


def test_an_orphan_age_under_an_hour_fails_the_run_and_deletes_nothing(tmp_path):
    wh = IcebergWarehouse.open(tmp_path)
    wh.replace_slice("campaign", CUSTOMER, DAY, rows(2), new_run_id(), state_version=1)
    staged = wh.stage_slice("campaign", CUSTOMER, DAY, rows(5), new_run_id(), 2)  # a load in flight
    with dg.instance_for_test() as instance:
        result = _run(_job(tmp_path, "iceberg"), instance, orphans_older_than_days=0.0)
    assert not result.success
    (failure,) = [e for e in result.all_node_events if e.event_type_value == "STEP_FAILURE"]
    assert "orphans_older_than_days must be at least" in failure.step_failure_data.error.message
    assert staged.commit() is not None and wh.read_slice("campaign", CUSTOMER, DAY).num_rows == 5


@pytest.mark.parametrize("kind", ["parquet", "postgres"])
def test_other_targets_have_nothing_to_expire(tmp_path, kind):
    with dg.instance_for_test() as instance:
        result = _run(_job(tmp_path, kind), instance)
    assert result.success and _metadata(result) == {"skipped": f"warehouse kind {kind}"}


def test_raw_retention_deletes_the_superseded_run_and_keeps_the_authoritative_one(tmp_path, sqlite_url):
    settings = Settings.from_env({"GRIDCAT_HOME": str(tmp_path), "GRIDCAT_DB_URL": sqlite_url})
    store = StateStore.open(sqlite_url)
    sink = RawSink(str(settings.raw_root))
    key = PartitionKey("google_ads", CUSTOMER, "campaign", DAY)
    old, authoritative = _runs(sink, key, [10, 9])
    store.record_result(ValidationResult(key, old, "success", "1", 2))
    store.record_result(ValidationResult(key, authoritative, "success", "1", 2))
    job = build_defs(settings).get_job_def(RETENTION_JOB_NAME)
    with dg.instance_for_test() as instance:

        def run(**config) -> dict:
            result = job.execute_in_process(
                run_config={**QUIET, "ops": {"apply_raw_retention": {"config": config}}}, instance=instance
            )
            assert result.success
            return _metadata(result)

        assert run(older_than_days=1.0, dry_run=True)["would_delete"] == 1
        assert len(sink.list_runs(key)) == 2, "a dry run deletes nothing"
        done = run(older_than_days=1.0)
    assert done["deleted"] == 1 and done["kept_authoritative"] == 1
    assert [r.run_id for r in sink.list_runs(key)] == [authoritative]
    assert store.get(key).current_run_id == authoritative
    store.close()
