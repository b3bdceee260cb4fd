"""``catalog/entities``: the catalog entities synced from the feed config (non-partitioned)."""

import dagster as dg

from gridcat_pipelines.defs.resources import PipelineConfigResource, StateStoreResource
from gridcat_pipelines.facet_types.feed_sync import sync_entities

CATALOG_ENTITIES_KEY = dg.AssetKey(["catalog", "entities"])


@dg.asset(
    key=CATALOG_ENTITIES_KEY,
    group_name="catalog",
    description="Catalog entities (catalog, google_ads schema, tables, attributes, concepts) "
    "built from the feed config; the same sync as `gridcat entities sync`.",
    kinds={"python"},
)
def catalog_entities(
    context: dg.AssetExecutionContext,
    state_store: StateStoreResource,
    pipeline_config: PipelineConfigResource,
) -> dg.MaterializeResult:
    """Sync the entities from the feed config; report what changed."""
    services = state_store.open_catalog()
    try:
        report = sync_entities(services.entities, pipeline_config.config)
        total = len(services.entities.repository.revisions())
    finally:
        services.close()
    context.log.info(f"catalog sync: {report.to_json()}, {total} entities")
    return dg.MaterializeResult(metadata={**report.to_json(), "entities": total})
