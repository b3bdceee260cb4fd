"""The ingestion job: raw extract + validation of every feed for one customer x day partition."""

from __future__ import annotations

import dagster as dg

from gridcat_pipelines.defs.ingestion.assets import RAW_GROUP, VALIDATED_GROUP

INGEST_JOB_NAME = "google_ads_ingest"


def build_ingest_job() -> dg.UnresolvedAssetJobDefinition:
    """One run per partition pulls and validates every feed (checks are stored per partition)."""
    return dg.define_asset_job(
        INGEST_JOB_NAME,
        selection=dg.AssetSelection.groups(RAW_GROUP, VALIDATED_GROUP),
        description="Pull every feed for one customer and day into raw runs, validate them, write state.",
    )
