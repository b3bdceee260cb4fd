"""The ingestion domain's definitions, built from the feed config."""

from __future__ import annotations

import dagster as dg

from gridcat_pipelines.config import Settings
from gridcat_pipelines.defs.ingestion.assets import build_feed_assets
from gridcat_pipelines.defs.ingestion.jobs import build_ingest_job
from gridcat_pipelines.defs.ingestion.partitions import ingestion_partitions
from gridcat_pipelines.defs.ingestion.schedules import build_daily_pull_schedule
from gridcat_pipelines.defs.ingestion.sensors import sync_customer_partitions
from gridcat_pipelines.feeds.models import PipelineConfig


def build_ingestion_defs(config: PipelineConfig, ads_api_pool: str = "synthetic") -> dg.Definitions:
    """Assets per feed, the ingest job, the daily schedule and the customer sync sensor.
    ``ads_api_pool`` names the developer token pool the ingest runs are tagged with."""
    partitions_def = ingestion_partitions(config.start_date)
    assets = [a for feed in config.feeds.values() for a in build_feed_assets(feed, partitions_def)]
    job = build_ingest_job(ads_api_pool)
    return dg.Definitions(
        assets=assets,
        jobs=[job],
        schedules=[build_daily_pull_schedule(job, config)],
        sensors=[sync_customer_partitions],
    )


@dg.definitions
def ingestion_defs() -> dg.Definitions:
    """Ingestion for the feed config of the environment (``dg`` loads this)."""
    settings = Settings.from_env()
    return build_ingestion_defs(settings.pipeline_config(), settings.source)
