"""Asset checks: one per validation rule of a feed, reported per partition."""

from __future__ import annotations

import json
import warnings

import dagster as dg

from gridcat_pipelines.feeds.models import FeedConfig
from gridcat_pipelines.validation.registry import active
from gridcat_pipelines.validation.report import RuleResult, ValidationReport

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


def rule_check_results(report: ValidationReport, asset_key: dg.AssetKey) -> list[dg.AssetCheckResult]:
    """A check result per evaluated rule; skipped rules get none (Dagster shows them skipped)."""
    return [_check_result(rule, report, asset_key) for rule in report.rules if not rule.skipped]


def _check_result(rule: RuleResult, report: ValidationReport, asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    metadata: dict[str, object] = {
        "run_id": report.run_id,
        "failing_rows": rule.failing_rows,
        "message": rule.message,
    }
    if rule.samples:
        metadata["sample_rows"] = dg.MetadataValue.json(json.loads(json.dumps(rule.samples, default=str)))
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=rule.rule,
        passed=bool(rule.passed),
        metadata=metadata,
        description=rule.message,
    )
