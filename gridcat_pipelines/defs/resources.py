"""Dagster resources shared by every domain: the state store."""

from __future__ import annotations

import dagster as dg

from gridcat_pipelines.config import Settings
from gridcat_pipelines.state import StateStore


class StateStoreResource(dg.ConfigurableResource):
    """The partition state store; ``db_url`` empty means ``GRIDCAT_DB_URL`` / the embedded SQLite."""

    db_url: str = ""
    upgrade_on_open: bool = True

    @property
    def store(self) -> StateStore:
        """The opened store (migrated first when ``upgrade_on_open``), shared per process and URL."""
        return _open_store(self.db_url or Settings.from_env().db_url, self.upgrade_on_open)


_STORES: dict[tuple[str, bool], StateStore] = {}
_MAX_STORES = 8


def _open_store(url: str, upgrade: bool) -> StateStore:
    """One store (engine and connection pool) per URL per process: sensors and assets re-create
    their resources on every tick and step, and migrating and checking the schema each time
    would dominate a small tick. The oldest store is closed when more than a few are open."""
    key = (url, upgrade)
    store = _STORES.get(key)
    if store is None:
        store = _STORES[key] = StateStore.open(url, upgrade=upgrade)
        while len(_STORES) > _MAX_STORES:
            _STORES.pop(next(iter(_STORES))).close()
    return store
