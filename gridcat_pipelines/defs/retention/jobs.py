"""The raw retention job: delete superseded raw runs past an age (never authoritative or pinned)."""

import dagster as dg

from gridcat_pipelines.defs.resources import RawSinkResource, StateStoreResource
from gridcat_pipelines.leases.store import LeaseStore
from gridcat_pipelines.retention import apply_retention

RETENTION_JOB_NAME = "raw_retention"


class RetentionConfig(dg.Config):
    """Run config of the retention job (mirrors ``gridcat retention``)."""

    older_than_days: float = 30.0
    dry_run: bool = False


@dg.op(description="Delete superseded raw runs older than the given age that no lease pins.")
def apply_raw_retention(
    context: dg.OpExecutionContext,
    config: RetentionConfig,
    state_store: StateStoreResource,
    raw_sink: RawSinkResource,
) -> dg.Output:
    """Run retention and report what it deleted (or would delete) and what it kept."""
    store = state_store.store
    report = apply_retention(
        store,
        raw_sink.sink,
        LeaseStore(store),
        older_than_days=config.older_than_days,
        dry_run=config.dry_run,
    )
    verb = "would delete" if config.dry_run else "deleted"
    context.log.info(
        f"retention {verb} {len(report.runs)} run(s); kept {report.kept_authoritative} authoritative, "
        f"{report.kept_pinned} pinned, {report.kept_recent} recent, {report.kept_not_superseded} not superseded"
    )
    return dg.Output(
        None,
        metadata={
            verb.replace(" ", "_"): len(report.runs),
            "kept_pinned": report.kept_pinned,
            "kept_authoritative": report.kept_authoritative,
            "report": dg.MetadataValue.json(report.to_json()),
        },
    )


@dg.job(name=RETENTION_JOB_NAME, description="Raw-run retention (see gridcat retention --help).")
def raw_retention_job():
    """One op: apply retention."""
    apply_raw_retention()
