"""The retention jobs: ``raw_retention`` deletes superseded raw runs past an age (never
authoritative or pinned); ``warehouse_retention`` expires old Iceberg snapshots and deletes the
files none of the kept ones references (both as ``gridcat retention`` does)."""

import dagster as dg

from gridcat_pipelines.defs.gate.resources import WarehouseResource
from gridcat_pipelines.defs.resources import RawSinkResource, StateStoreResource
from gridcat_pipelines.errors import GridcatError
from gridcat_pipelines.leases.store import LeaseStore
from gridcat_pipelines.retention import apply_retention
from gridcat_pipelines.warehouse.maintenance import ORPHAN_DAYS, SNAPSHOT_DAYS, apply_warehouse_retention

RETENTION_JOB_NAME = "raw_retention"
WAREHOUSE_RETENTION_JOB_NAME = "warehouse_retention"


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


class WarehouseRetentionConfig(dg.Config):
    """Run config of the warehouse retention job (mirrors ``gridcat retention``'s warehouse options)."""

    snapshots_older_than_days: float = SNAPSHOT_DAYS
    orphans_older_than_days: float = ORPHAN_DAYS
    dry_run: bool = False


@dg.op(description="Iceberg warehouse: expire old snapshots, then delete the files no kept snapshot references.")
def apply_iceberg_retention(
    context: dg.OpExecutionContext, config: WarehouseRetentionConfig, warehouse: WarehouseResource
) -> dg.Output:
    """Expire and sweep every Iceberg table; report per table what was (or would be) removed.
    The other warehouse targets keep no snapshots: the op says so and does nothing."""
    if warehouse.kind != "iceberg":
        context.log.info(f"the {warehouse.kind} warehouse keeps no snapshots: nothing to expire or sweep")
        return dg.Output(None, metadata={"skipped": f"warehouse kind {warehouse.kind}"})
    try:
        result = apply_warehouse_retention(
            warehouse.warehouse,
            snapshot_days=config.snapshots_older_than_days,
            orphan_days=config.orphans_older_than_days,
            dry_run=config.dry_run,
        )
    except GridcatError as exc:  # a bad age, a file IO it cannot list: the message, no stack
        raise dg.Failure(description=f"{exc.code}: {exc.message}", allow_retries=False) from None
    verb = "would" if config.dry_run else "did"
    snapshots = sum(result.expired.values())
    files = sum(r.files for r in result.removed.values())
    size = sum(r.bytes for r in result.removed.values())
    context.log.info(
        f"warehouse retention {verb} expire {snapshots} snapshot(s) and {verb} delete {files} unreferenced "
        f"file(s) ({size} bytes) over {len(result.expired)} table(s)"
    )
    return dg.Output(
        None,
        metadata={
            "expired_snapshots": snapshots,
            "removed_files": files,
            "removed_bytes": size,
            "dry_run": config.dry_run,
            "report": dg.MetadataValue.json(result.to_json()),
        },
    )


@dg.job(
    name=WAREHOUSE_RETENTION_JOB_NAME,
    description="Iceberg warehouse retention (see gridcat retention --help: --warehouse-*-older-than).",
)
def warehouse_retention_job():
    """One op: expire snapshots and sweep unreferenced files."""
    apply_iceberg_retention()
