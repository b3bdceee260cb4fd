"""The gate domain's definitions: a warehouse asset per feed, the load job, the gate and
reconcile sensors."""

import dagster as dg

from gridcat_pipelines.config import Settings
from gridcat_pipelines.defs.gate.assets import WAREHOUSE_GROUP, build_warehouse_asset
from gridcat_pipelines.defs.gate.sensors import WAREHOUSE_JOB_NAME, build_gate_sensor, build_reconcile_sensor
from gridcat_pipelines.defs.ingestion.partitions import ingestion_partitions
from gridcat_pipelines.feeds.models import PipelineConfig


def build_gate_defs(config: PipelineConfig, warehouse_kind: str = "parquet") -> dg.Definitions:
    """A warehouse asset per feed (labelled with the ``warehouse_kind`` it loads into), the load
    job, the gate and reconcile sensors."""
    partitions_def = ingestion_partitions(config.start_date)
    assets = [build_warehouse_asset(feed, partitions_def, warehouse_kind) for feed in config.feeds.values()]
    job = dg.define_asset_job(
        WAREHOUSE_JOB_NAME,
        selection=dg.AssetSelection.groups(WAREHOUSE_GROUP),
        executor_def=dg.in_process_executor,  # a step per feed, in the run's process (README "Scale")
        tags={"gridcat/warehouse": "load"},
        description="Load authoritative runs into the warehouse (launched by the gate sensor).",
    )
    return dg.Definitions(assets=assets, jobs=[job], sensors=[build_gate_sensor(job), build_reconcile_sensor(job)])


@dg.definitions
def gate_defs() -> dg.Definitions:
    """The gate for the feed config of the environment (``dg`` loads this)."""
    settings = Settings.from_env()
    return build_gate_defs(settings.pipeline_config(), settings.warehouse_kind)
