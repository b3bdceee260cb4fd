"""The gridcat code location (``workspace.yaml`` and ``[tool.dagster]`` load ``defs`` here).

``defs`` is what ``dg`` builds: every ``@dg.definitions`` function under ``gridcat_pipelines/defs/``
(one per domain folder, plus the shared resources), loaded by ``dg.load_from_defs_folder`` with
the settings of the environment. ``build_defs(settings)`` builds the same definitions for given
settings: the seam tests and the CLI use; ``test_definitions.py`` checks both agree.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from gridcat_pipelines.config import Settings
from gridcat_pipelines.defs.catalog.definitions import build_catalog_defs
from gridcat_pipelines.defs.gate.definitions import build_gate_defs
from gridcat_pipelines.defs.ingestion.definitions import build_ingestion_defs
from gridcat_pipelines.defs.resources import build_resources
from gridcat_pipelines.defs.retention.definitions import build_retention_defs
from gridcat_pipelines.defs.tag_facets.definitions import build_tag_facet_defs


def build_defs(
    settings: Settings | None = None, *, ads_source: dg.ConfigurableResource | None = None
) -> dg.Definitions:
    """All of gridcat's definitions for ``settings`` (default: from the environment)."""
    settings = settings or Settings.from_env()
    config = settings.pipeline_config()
    return dg.Definitions.merge(
        build_ingestion_defs(config, settings.source),
        build_gate_defs(config, settings.warehouse_kind),
        build_retention_defs(),
        build_catalog_defs(),
        build_tag_facet_defs(),
        dg.Definitions(resources=build_resources(settings, ads_source=ads_source)),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The definitions ``dg`` finds under ``gridcat_pipelines/defs/``."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
