"""Running gridcat's jobs in the CLI process, on the shared local instance (no daemon needed).

``gridcat pull`` and ``gridcat demo`` use these: the runs land in the same Dagster instance
``dagster dev`` shows, and the sensor is evaluated the way the daemon evaluates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import dagster as dg

from gridcat_pipelines.defs.gate.sensors import GATE_SENSOR_NAME, WAREHOUSE_JOB_NAME
from gridcat_pipelines.defs.ingestion.assets import raw_key, validated_key
from gridcat_pipelines.defs.ingestion.jobs import INGEST_JOB_NAME
from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION, partition_key
from gridcat_pipelines.errors import failed_precondition

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class PullOutcome:
    """One partition pulled and validated: the new run and what recording it did."""

    run_id: str
    outcome: str
    dagster_run_id: str


def ensure_customer_partitions(instance: dg.DagsterInstance, customer_ids: list[str]) -> None:
    """Add the customers that have no partition yet."""
    existing = set(instance.get_dynamic_partitions(CUSTOMERS_PARTITION))
    new = [c for c in customer_ids if c not in existing]
    if new:
        instance.add_dynamic_partitions(CUSTOMERS_PARTITION, new)


def run_ingest(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    customer_id: str,
    day: date,
    feed_names: list[str] | None = None,
) -> dg.ExecuteInProcessResult:
    """Run the ingest job for one partition: every feed, or only ``feed_names``."""
    selection = None
    if feed_names is not None:
        selection = [key for name in feed_names for key in (raw_key(name), validated_key(name))]
    return defs.resolve_job_def(INGEST_JOB_NAME).execute_in_process(
        partition_key=partition_key(customer_id, day),
        instance=instance,
        asset_selection=selection,
        raise_on_error=False,
        run_config=QUIET,
    )


def pull_one(defs: dg.Definitions, instance: dg.DagsterInstance, customer_id: str, feed: str, day: date) -> PullOutcome:
    """Re-extract and re-validate one partition (a new raw run, never an overwrite)."""
    ensure_customer_partitions(instance, [customer_id])
    result = run_ingest(defs, instance, customer_id, day, [feed])
    validated = [
        m for m in result.get_asset_materialization_events()
        if m.asset_key == validated_key(feed)
    ]
    if not validated:
        failures = [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        raise failed_precondition(
            f"pull of {feed} for {customer_id} on {day} did not complete "
            f"(Dagster run {result.run_id}): {'; '.join(m or '' for m in failures) or 'see the run'}",
            {"dagster_run_id": result.run_id},
        )
    meta = validated[-1].step_materialization_data.materialization.metadata
    return PullOutcome(run_id=meta["run_id"].value, outcome=meta["outcome"].value, dagster_run_id=result.run_id)


def gate_tick(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """Evaluate the gate sensor once, as the daemon would, and store its new cursor."""
    sensor = defs.resolve_sensor_def(GATE_SENSOR_NAME)
    cursor = instance.run_storage.get_cursor_values({_cursor_key()}).get(_cursor_key())
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources=defs.resources,
        repository_def=defs.get_repository_def(),
        sensor_name=GATE_SENSOR_NAME,
    ) as ctx, dg.partition_loading_context(dynamic_partitions_store=instance):
        result = sensor.evaluate_tick(ctx)
    if result.cursor is not None:
        instance.run_storage.set_cursor_values({_cursor_key(): result.cursor})
    return list(result.run_requests or [])


def _cursor_key() -> str:
    """Where the CLI keeps its own gate cursor in the instance (apart from the daemon's tick cursor)."""
    return f"gridcat/local_cursor/{GATE_SENSOR_NAME}"


def run_load(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest) -> bool:
    """Execute one load the gate requested; ``True`` when the run succeeded."""
    result = defs.resolve_job_def(WAREHOUSE_JOB_NAME).execute_in_process(
        partition_key=request.partition_key,
        instance=instance,
        tags=request.tags,
        asset_selection=request.asset_selection,
        raise_on_error=False,
        run_config=QUIET,
    )
    return result.success
