"""Asset checks on ``catalog/entities``: every entity validates and carries its mandatory facets."""

from __future__ import annotations

import dagster as dg

from gridcat_pipelines.defs.catalog.assets import CATALOG_ENTITIES_KEY
from gridcat_pipelines.defs.resources import StateStoreResource

_SAMPLE = 20


def _result(checked: int, issues: list) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=not issues,
        metadata={
            "entities_checked": checked,
            "issues": len(issues),
            "sample": dg.MetadataValue.json([i.to_json() for i in issues[:_SAMPLE]]),
        },
    )


@dg.asset_check(
    asset=CATALOG_ENTITIES_KEY, description="Every entity's facets validate against the facet type catalog."
)
def entities_validate(state_store: StateStoreResource) -> dg.AssetCheckResult:
    """Markers, disabled types, applicableTo and content schemas of every facet of every entity."""
    services = state_store.open_catalog()
    try:
        entities = services.entities.repository.get_all()
        snapshot = services.catalog.snapshot()
        issues = [i for e in entities for i in services.entities.problems(e, catalog=snapshot)]
    finally:
        services.close()
    return _result(len(entities), issues)


@dg.asset_check(asset=CATALOG_ENTITIES_KEY, description="Every entity carries the mandatory facets of its type.")
def entities_have_mandatory_facets(state_store: StateStoreResource) -> dg.AssetCheckResult:
    """structural/descriptive on tables and attributes, relation on tables, descriptive on schemas."""
    services = state_store.open_catalog()
    try:
        entities = services.entities.repository.get_all()
        snapshot = services.catalog.snapshot()
        issues = [i for e in entities for i in snapshot.missing_mandatory(e)]
    finally:
        services.close()
    return _result(len(entities), issues)
