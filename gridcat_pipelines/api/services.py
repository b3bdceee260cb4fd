"""The services one API process serves, over one engine: the same objects the CLI uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gridcat_pipelines.api.idempotency import IdempotencyStore
from gridcat_pipelines.facet_types.catalog import FacetTypeCatalog
from gridcat_pipelines.facet_types.db_repository import DbEntityRepository, DbFacetTypeRepository
from gridcat_pipelines.facet_types.entities import CatalogEntities
from gridcat_pipelines.state import migrations
from gridcat_pipelines.state.db import create_state_engine
from gridcat_pipelines.state.store import StateStore
from gridcat_pipelines.tag_facets.service import FacetService

ACTOR = "api"


@dataclass
class ApiServices:
    """State store, tag facets, facet type catalog and entities, and the idempotency records."""

    store: StateStore
    facets: FacetService
    catalog: FacetTypeCatalog
    entities: CatalogEntities
    idempotency: IdempotencyStore

    @classmethod
    def open(cls, db_url: str, *, upgrade: bool = False, connections: int = 16) -> ApiServices:
        """Everything over the database at ``db_url`` (``FAILED_PRECONDITION`` when its schema
        is behind, unless ``upgrade``); platform facet types are stored if missing. The pool
        holds up to ``connections`` (one per worker thread, so no request waits for one)."""
        engine = create_state_engine(db_url, pool_size=max(connections // 2, 1))
        try:
            if upgrade:
                migrations.upgrade(engine)
            store = StateStore(engine)  # FAILED_PRECONDITION when the schema is behind
            catalog = FacetTypeCatalog(DbFacetTypeRepository(engine), actor=ACTOR)
            catalog.ensure_platform_types()
        except BaseException:
            engine.dispose()
            raise
        return cls(
            store=store,
            facets=FacetService(store),
            catalog=catalog,
            entities=CatalogEntities(catalog, DbEntityRepository(store.engine), actor=ACTOR),
            idempotency=IdempotencyStore(store.engine),
        )

    def health(self) -> dict[str, Any]:
        """``{"status": "ok", "database", "schema_version"}``; raises when the database is down
        (reading the migrations table is the round trip that proves it answers)."""
        return {
            "status": "ok",
            "database": self.store.dialect,
            "schema_version": migrations.current_version(self.store.engine),
        }

    def close(self) -> None:
        """Release the database connections."""
        self.store.close()
