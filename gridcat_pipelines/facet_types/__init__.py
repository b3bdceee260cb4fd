"""The facet type catalog (the facet-type catalog spec): typed metadata documents attached to catalog entities.

Not the *tag facets* of ``gridcat_pipelines.tag_facets`` (the tag-facet contract): different thing, different
module. This package does not import Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from gridcat_pipelines.facet_types.catalog import DeploymentConfig, FacetTypeCatalog
from gridcat_pipelines.facet_types.db_repository import DbEntityRepository, DbFacetTypeRepository
from gridcat_pipelines.facet_types.entities import CatalogEntities
from gridcat_pipelines.facet_types.model import (
    CatalogEntity,
    FacetTypeDescriptor,
    TargetType,
    ValidationIssue,
    ValidationResult,
)
from gridcat_pipelines.facet_types.repository import (
    FacetTypeRepository,
    InMemoryFacetTypeRepository,
    YamlFacetTypeRepository,
)
from gridcat_pipelines.state import migrations
from gridcat_pipelines.state.db import create_state_engine

__all__ = [
    "CatalogEntities",
    "CatalogEntity",
    "CatalogServices",
    "DeploymentConfig",
    "FacetTypeCatalog",
    "FacetTypeDescriptor",
    "FacetTypeRepository",
    "InMemoryFacetTypeRepository",
    "TargetType",
    "ValidationIssue",
    "ValidationResult",
    "YamlFacetTypeRepository",
    "open_catalog",
]


@dataclass
class CatalogServices:
    """The catalog and the entity service over one state database."""

    catalog: FacetTypeCatalog
    entities: CatalogEntities
    engine: Engine

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()


def open_catalog(
    db_url: str,
    *,
    config: DeploymentConfig | None = None,
    upgrade: bool = False,
    actor: str = "gridcat",
) -> CatalogServices:
    """The catalog in the state database at ``db_url`` (platform types stored if missing).

    ``FAILED_PRECONDITION`` when the schema is behind (run ``gridcat db upgrade``) unless
    ``upgrade`` applies the missing migrations first.
    """
    engine = create_state_engine(db_url)
    try:
        if upgrade:
            migrations.upgrade(engine)
        migrations.check_schema(engine)
        catalog = FacetTypeCatalog(DbFacetTypeRepository(engine), config, actor=actor)
        catalog.ensure_platform_types()
    except BaseException:
        engine.dispose()
        raise
    return CatalogServices(catalog, CatalogEntities(catalog, DbEntityRepository(engine), actor=actor), engine)
