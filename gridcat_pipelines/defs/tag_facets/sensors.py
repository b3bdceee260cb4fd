"""Launches the backfill job for queued (PENDING) facet backfill jobs and for abandoned RUNNING ones."""


import dagster as dg

from gridcat_pipelines.defs.resources import StateStoreResource
from gridcat_pipelines.defs.tag_facets.jobs import facet_backfill_job
from gridcat_pipelines.tag_facets.service import FacetService


def backfill_run_requests(service: FacetService) -> list[dg.RunRequest]:
    """One RunRequest per job to launch; the run key changes with the job's progress so a dead
    runner's job is relaunched (and resumes), while a job already launched is not twice."""
    requests = []
    for job in service.jobs_to_launch():
        run_key = f"{job['job_id']}:{job['status']}:{job['batches']}"
        requests.append(
            dg.RunRequest(
                run_key=run_key,
                run_config={"ops": {"run_facet_backfill": {"config": {"job_id": job["job_id"]}}}},
                tags={"gridcat/facet_backfill_job": job["job_id"], "gridcat/facet_id": job["facet_id"]},
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
    requests = backfill_run_requests(FacetService(state_store.store))
    if not requests:
        return dg.SkipReason("no PENDING facet backfill jobs")
    return requests
