"""Tag facet jobs; run config mirrors the tag-facet contract's requests. Thin: each op calls ``FacetService``."""

import dagster as dg

from gridcat_pipelines.defs.resources import StateStoreResource
from gridcat_pipelines.tag_facets.service import FacetService

PROMOTE_JOB = "tag_facet_promote"
DISABLE_JOB = "tag_facet_disable"
BACKFILL_JOB = "tag_facet_backfill"


class PromoteFacetConfig(dg.Config):
    """PromoteFacet request."""

    key_name: str
    column_name: str = ""
    create_index: bool = True


class DisableFacetConfig(dg.Config):
    """DisableFacet request."""

    facet_id: str
    reason: str


class FacetBackfillConfig(dg.Config):
    """TriggerFacetBackfill request; or ``job_id`` of a queued job to run (what the sensor sends)."""

    facet_id: str = ""
    batch_size: int = 10000
    mode: str = "FULL"
    job_id: str = ""


def _service(state_store: StateStoreResource) -> FacetService:
    return FacetService(state_store.store)


@dg.op(name="promote_facet")
def promote_facet(context: dg.OpExecutionContext, config: PromoteFacetConfig, state_store: StateStoreResource) -> dict:
    """Promote the key; the initial backfill job (if any) is left PENDING for the sensor."""
    result = _service(state_store).promote(config.key_name, config.column_name or None, config.create_index)
    context.add_output_metadata(
        {"facet_id": result["facet_id"], "status": result["status"], "job_id": str(result["job_id"])}
    )
    return result


@dg.op(name="disable_facet")
def disable_facet(context: dg.OpExecutionContext, config: DisableFacetConfig, state_store: StateStoreResource) -> dict:
    """Disable the facet (column kept, projector stops, filters refused)."""
    result = _service(state_store).disable(config.facet_id, config.reason)
    context.add_output_metadata(
        {"facet_id": result["facet_id"], "outstanding_jobs": len(result["outstanding_backfill_jobs"])}
    )
    return result


@dg.op(name="run_facet_backfill")
def run_facet_backfill(
    context: dg.OpExecutionContext, config: FacetBackfillConfig, state_store: StateStoreResource
) -> dict:
    """Run ``job_id`` (resuming from its checkpoint), or queue a job for ``facet_id`` and run it."""
    service = _service(state_store)
    job_id = config.job_id or service.trigger_backfill(config.facet_id, config.batch_size, config.mode)["job_id"]

    def progress(job: dict) -> None:
        context.log.info(f"backfill {job['job_id']}: {job['rows_processed']}/{job['rows_total']} rows, {job['status']}")

    result = service.run_backfill(job_id, progress=progress)
    context.add_output_metadata(
        {k: str(result[k]) for k in ("job_id", "status", "rows_total", "rows_processed", "failures")}
    )
    if result["status"] != "SUCCEEDED":
        raise dg.Failure(f"backfill {job_id} ended {result['status']}: {result['error']}")
    return result


@dg.job(name=PROMOTE_JOB, description="PromoteFacet: add a tag key's projection column and start projecting.")
def promote_facet_job():
    promote_facet()


@dg.job(name=DISABLE_JOB, description="DisableFacet: stop projecting a facet; its column is kept.")
def disable_facet_job():
    disable_facet()


@dg.job(
    name=BACKFILL_JOB,
    description="Facet backfill: keyset batches, checkpointed; a re-run resumes from the checkpoint.",
    tags={"dagster/max_retries": 0},
)
def facet_backfill_job():
    run_facet_backfill()
