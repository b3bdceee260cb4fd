"""Keeps the ``customers`` dynamic partitions in step with the customer config: one key per
customer group (the customer ids, or the shards past ``pipeline.shard_above`` customers)."""

import dagster as dg

from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION, customers_partitions
from gridcat_pipelines.defs.ingestion.run_scope import customer_groups
from gridcat_pipelines.defs.resources import PipelineConfigResource


def customers_to_add(configured: list[str], existing: list[str]) -> list[str]:
    """Configured customer groups that have no partition yet, sorted."""
    return sorted(set(configured) - set(existing))


@dg.sensor(
    name="sync_customer_partitions",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a customer partition for every customer group of the customer config "
    "(each customer, or each shard past pipeline.shard_above customers).",
)
def sync_customer_partitions(context: dg.SensorEvaluationContext, pipeline_config: PipelineConfigResource):
    """Add partitions for new customer groups (removed ones keep their partitions and history)."""
    existing = context.instance.get_dynamic_partitions(CUSTOMERS_PARTITION)
    new = customers_to_add(customer_groups(pipeline_config.config).keys(), existing)
    if not new:
        return dg.SkipReason(f"all {len(existing)} configured customer groups have partitions")
    context.log.info(f"adding {len(new)} customer partition(s): {', '.join(new[:20])}{' ...' if len(new) > 20 else ''}")
    return dg.SensorResult(dynamic_partitions_requests=[customers_partitions.build_add_request(new)])
