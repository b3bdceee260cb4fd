"""The one ``Definitions`` object of the gridcat code location (``workspace.yaml`` loads it).

``build_defs`` merges the domains' definitions with the shared resources; the module-level
``defs`` uses the defaults (config from ``config/*.yaml``, stores under ``GRIDCAT_HOME``).
"""

from __future__ import annotations

import dagster as dg

from gridcat_pipelines.config import Settings
from gridcat_pipelines.defs.catalog.definitions import build_catalog_defs
from gridcat_pipelines.defs.gate.definitions import build_gate_defs
from gridcat_pipelines.defs.gate.resources import WarehouseResource
from gridcat_pipelines.defs.ingestion.definitions import build_ingestion_defs
from gridcat_pipelines.defs.ingestion.resources import (
    AdsSourceResource,
    PipelineConfigResource,
    RawSinkResource,
    cached_pipeline_config,
)
from gridcat_pipelines.defs.resources import StateStoreResource
from gridcat_pipelines.defs.tag_facets.definitions import build_tag_facet_defs


def build_defs(
    settings: Settings | None = None,
    *,
    ads_source: AdsSourceResource | None = None,
) -> dg.Definitions:
    """All of gridcat's definitions for ``settings`` (default: from the environment)."""
    settings = settings or Settings.from_env()
    config = cached_pipeline_config(settings.feeds_path, settings.customers_path)
    resources = {
        "state_store": StateStoreResource(db_url=settings.db_url),
        "raw_sink": RawSinkResource(root=str(settings.raw_root)),
        "ads_source": ads_source or AdsSourceResource(),
        "pipeline_config": PipelineConfigResource(
            feeds_path=str(settings.feeds_path), customers_path=str(settings.customers_path)
        ),
        "warehouse": WarehouseResource(
            root=str(settings.warehouse_root),
            kind="postgres" if settings.warehouse_url else "parquet",
            url=settings.warehouse_url,
        ),
    }
    return dg.Definitions.merge(
        build_ingestion_defs(config),
        build_gate_defs(config),
        build_catalog_defs(),
        build_tag_facet_defs(),
        dg.Definitions(resources=resources),
    )


defs = build_defs()
