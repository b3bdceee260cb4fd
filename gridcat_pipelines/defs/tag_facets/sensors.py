"""Launches the backfill job for queued (PENDING) facet backfill jobs and for abandoned RUNNING ones."""

import dagster as dg

from gridcat_pipelines.defs.resources import StateStoreResource
from gridcat_pipelines.defs.tag_facets.jobs import facet_backfill_job
from gridcat_pipelines.tag_facets.service import FacetService

JOB_TAG = "gridcat/facet_backfill_job"
_IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def backfill_run_requests(service: FacetService, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """One RunRequest per job to launch: a queued (PENDING) job, also one whose run died before
    it started it, and a RUNNING job with no batch for 10 minutes (its runner died, even before
    its first batch). A job with a run queued or running is left alone; the run key counts the
    job's runs so far, so every relaunch is a new run (which resumes at the checkpoint)."""
    requests = []
    for job in service.jobs_to_launch():
        runs = instance.get_runs(filters=dg.RunsFilter(tags={JOB_TAG: job["job_id"]}))
        if any(run.status in _IN_FLIGHT for run in runs):
            continue
        run_key = f"{job['job_id']}:{job['status']}:{job['batches']}:run{len(runs)}"
        requests.append(
            dg.RunRequest(
                run_key=run_key,
                run_config={"ops": {"run_facet_backfill": {"config": {"job_id": job["job_id"]}}}},
                tags={JOB_TAG: job["job_id"], "gridcat/facet_id": job["facet_id"]},
            )
        )
    return requests


@dg.sensor(
    name="tag_facet_backfill_sensor",
    job=facet_backfill_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Runs queued tag-facet backfill jobs (TriggerFacetBackfill / PromoteFacet).",
)
def tag_facet_backfill_sensor(context: dg.SensorEvaluationContext, state_store: StateStoreResource):
    """Launch queued backfill jobs."""
    requests = backfill_run_requests(FacetService(state_store.store), context.instance)
    if not requests:
        return dg.SkipReason("no PENDING facet backfill jobs")
    return requests
