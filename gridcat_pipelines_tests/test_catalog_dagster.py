"""The ``catalog/entities`` asset materializes through Dagster and its checks pass."""

from __future__ import annotations

import dagster as dg

from gridcat_pipelines.config import Settings
from gridcat_pipelines.defs.catalog.assets import CATALOG_ENTITIES_KEY, catalog_entities
from gridcat_pipelines.defs.catalog.checks import entities_have_mandatory_facets, entities_validate
from gridcat_pipelines.defs.catalog.definitions import build_catalog_defs
from gridcat_pipelines.defs.resources import PipelineConfigResource, StateStoreResource
from gridcat_pipelines.facet_types import open_catalog


def test_catalog_asset_materializes_and_checks_pass(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    settings = Settings.from_env({"GRIDCAT_HOME": str(tmp_path)})
    config = PipelineConfigResource(feeds_path=str(settings.feeds_path), customers_path=str(settings.customers_path))
    resources = {"state_store": StateStoreResource(db_url=url), "pipeline_config": config}
    with dg.DagsterInstance.ephemeral() as instance:
        for _ in range(2):  # a re-run is idempotent
            result = dg.materialize(
                [catalog_entities, entities_validate, entities_have_mandatory_facets],
                resources=resources,
                instance=instance,
                raise_on_error=True,
            )
            assert result.success
            checks = result.get_asset_check_evaluations()
            assert {c.check_name for c in checks} == {"entities_validate", "entities_have_mandatory_facets"}
            assert all(c.passed for c in checks)
        meta = result.asset_materializations_for_node("catalog__entities")[0].metadata
        assert meta["created"].value == 0 and meta["unchanged"].value == meta["entities"].value > 100
    services = open_catalog(url)
    try:
        assert services.entities.get("google_ads.campaign").type.value == "TABLE"
    finally:
        services.close()


def test_catalog_defs_are_wired_into_the_code_location():
    from gridcat_pipelines.definitions import build_defs

    defs = build_defs()
    assert defs.resolve_assets_def(CATALOG_ENTITIES_KEY) is not None
    check_keys = {k.name for k in defs.resolve_asset_graph().asset_check_keys if k.asset_key == CATALOG_ENTITIES_KEY}
    assert build_catalog_defs().assets
    assert check_keys == {"entities_validate", "entities_have_mandatory_facets"}
