"""The tag facet jobs and the backfill sensor through Dagster (in process, temporary instance)."""

from __future__ import annotations

import dagster as dg

from gridcat_pipelines.defs.resources import StateStoreResource
from gridcat_pipelines.defs.tag_facets.definitions import build_tag_facet_defs
from gridcat_pipelines.defs.tag_facets.jobs import BACKFILL_JOB, DISABLE_JOB, PROMOTE_JOB
from gridcat_pipelines.defs.tag_facets.sensors import tag_facet_backfill_sensor
from gridcat_pipelines.state import StateStore
from gridcat_pipelines.tag_facets.service import FacetService
from gridcat_pipelines_tests.facet_helpers import seed_states

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def test_jobs_and_sensor(sqlite_url):
    store = StateStore.open(sqlite_url)
    seed_states(store, 12, lambda i: {"env": f"e{i % 3}"})
    resource = StateStoreResource(db_url=sqlite_url)
    defs = dg.Definitions.merge(build_tag_facet_defs(), dg.Definitions(resources={"state_store": resource}))
    svc = FacetService(store)
    with dg.instance_for_test() as instance:
        promote = defs.get_job_def(PROMOTE_JOB).execute_in_process(
            run_config={**QUIET, "ops": {"promote_facet": {"config": {"key_name": "env", "create_index": True}}}},
            instance=instance,
        )
        assert promote.success
        facet = promote.output_for_node("promote_facet")
        assert facet["status"] == "BACKFILLING" and facet["job_id"]

        ctx = dg.build_sensor_context(instance=instance, resources={"state_store": resource})
        requests = list(tag_facet_backfill_sensor(ctx))
        assert [r.run_config["ops"]["run_facet_backfill"]["config"]["job_id"] for r in requests] == [facet["job_id"]]

        run = defs.get_job_def(BACKFILL_JOB).execute_in_process(
            run_config={**QUIET, **requests[0].run_config}, instance=instance
        )
        assert run.success and run.output_for_node("run_facet_backfill")["rows_processed"] == 12
        assert svc.get_facet(facet["facet_id"])["status"] == "ENABLED"
        skipped = tag_facet_backfill_sensor(
            dg.build_sensor_context(instance=instance, resources={"state_store": resource})
        )
        assert isinstance(skipped, dg.SkipReason)

        full = defs.get_job_def(BACKFILL_JOB).execute_in_process(
            run_config={
                **QUIET,
                "ops": {
                    "run_facet_backfill": {"config": {"facet_id": facet["facet_id"], "mode": "FULL", "batch_size": 5}}
                },
            },
            instance=instance,
        )
        assert full.success and full.output_for_node("run_facet_backfill")["batches"] == 3

        bad = defs.get_job_def(BACKFILL_JOB).execute_in_process(
            run_config={
                **QUIET,
                "ops": {"run_facet_backfill": {"config": {"facet_id": facet["facet_id"], "mode": "SOME"}}},
            },
            instance=instance,
            raise_on_error=False,
        )
        assert not bad.success

        disable = defs.get_job_def(DISABLE_JOB).execute_in_process(
            run_config={
                **QUIET,
                "ops": {"disable_facet": {"config": {"facet_id": facet["facet_id"], "reason": "done"}}},
            },
            instance=instance,
        )
        assert disable.success and disable.output_for_node("disable_facet")["status"] == "DISABLED"
    store.close()
