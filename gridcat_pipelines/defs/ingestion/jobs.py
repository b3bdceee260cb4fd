"""The ingestion job: pull and validate every feed for the customer-days of a run's partitions."""

from __future__ import annotations

import dagster as dg

from gridcat_pipelines.defs.ingestion.assets import RAW_GROUP, VALIDATED_GROUP

INGEST_JOB_NAME = "google_ads_ingest"
ADS_API_TAG = "gridcat/ads_api"  # the run queue's tag concurrency limit per developer token pool


def build_ingest_job(ads_api_pool: str = "synthetic") -> dg.UnresolvedAssetJobDefinition:
    """One run per partition or partition range (a customer group x days); its steps run in the
    run's own process, one after the other: each step keeps many API requests in flight itself,
    and a process per step would cost more than the work (see the README, "Scale")."""
    return dg.define_asset_job(
        INGEST_JOB_NAME,
        selection=dg.AssetSelection.groups(RAW_GROUP, VALIDATED_GROUP),
        executor_def=dg.in_process_executor,
        tags={ADS_API_TAG: ads_api_pool},
        description="Pull every feed for the customer-days of the run's partitions into raw runs, "
        "validate them, write state.",
    )
