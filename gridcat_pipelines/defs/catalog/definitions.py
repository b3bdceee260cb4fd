"""The catalog domain's definitions."""

from __future__ import annotations

import dagster as dg

from gridcat_pipelines.defs.catalog.assets import catalog_entities
from gridcat_pipelines.defs.catalog.checks import entities_have_mandatory_facets, entities_validate


def build_catalog_defs() -> dg.Definitions:
    """The ``catalog/entities`` asset and its two checks (resources come from ``build_defs``)."""
    return dg.Definitions(
        assets=[catalog_entities],
        asset_checks=[entities_validate, entities_have_mandatory_facets],
    )


@dg.definitions
def catalog_defs() -> dg.Definitions:
    """The catalog domain (``dg`` loads this)."""
    return build_catalog_defs()
