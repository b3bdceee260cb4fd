"""Keeps the ``customers`` dynamic partitions in step with the customer config."""

import dagster as dg

from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION, customers_partitions
from gridcat_pipelines.defs.resources import PipelineConfigResource


def customers_to_add(configured: list[str], existing: list[str]) -> list[str]:
    """Configured customers that have no partition yet, sorted."""
    return sorted(set(configured) - set(existing))


@dg.sensor(
    name="sync_customer_partitions",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a customer partition for every customer in the customer config.",
)
def sync_customer_partitions(context: dg.SensorEvaluationContext, pipeline_config: PipelineConfigResource):
    """Add partitions for new customers (removed customers keep their partitions and history)."""
    existing = context.instance.get_dynamic_partitions(CUSTOMERS_PARTITION)
    new = customers_to_add(list(pipeline_config.config.customers), existing)
    if not new:
        return dg.SkipReason(f"all {len(existing)} configured customers have partitions")
    context.log.info(f"adding customer partitions: {', '.join(new)}")
    return dg.SensorResult(dynamic_partitions_requests=[customers_partitions.build_add_request(new)])
