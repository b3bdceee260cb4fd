"""How the catalog domain opens the facet type catalog: the state store's database URL."""

from __future__ import annotations

from gridcat_pipelines.config import Settings
from gridcat_pipelines.defs.resources import StateStoreResource
from gridcat_pipelines.facet_types import CatalogServices, open_catalog


def open_catalog_for(state_store: StateStoreResource) -> CatalogServices:
    """The catalog in the state store's database (the facet type tables live there too)."""
    url = state_store.db_url or Settings.from_env().db_url
    return open_catalog(url, upgrade=state_store.upgrade_on_open, actor="dagster")
