"""Asset checks: one per validation rule of a feed, reported per partition."""

from __future__ import annotations

import warnings

import dagster as dg

from gridcat_pipelines.feeds.models import FeedConfig
from gridcat_pipelines.validation.registry import active

# Declaring partitions_def on an asset check is a preview feature in Dagster 1.13, and it is
# what makes results per partition (without it a later success hides a failed partition).
warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def.*")


def rule_check_specs(
    feed: FeedConfig, asset_key: dg.AssetKey, partitions_def: dg.PartitionsDefinition
) -> list[dg.AssetCheckSpec]:
    """One partitioned check spec per rule that applies to ``feed``."""
    return [
        dg.AssetCheckSpec(
            rule.name,
            asset=asset_key,
            partitions_def=partitions_def,
            description=rule.description,
        )
        for rule in active().for_feed(feed)
    ]
