"""Dagster resources shared by every domain: the state store."""

from __future__ import annotations

from functools import cached_property

import dagster as dg

from gridcat_pipelines.config import Settings
from gridcat_pipelines.state import StateStore


class StateStoreResource(dg.ConfigurableResource):
    """The partition state store; ``db_url`` empty means ``GRIDCAT_DB_URL`` / the embedded SQLite."""

    db_url: str = ""
    upgrade_on_open: bool = True

    @cached_property
    def store(self) -> StateStore:
        """The opened store (migrated first when ``upgrade_on_open``)."""
        url = self.db_url or Settings.from_env().db_url
        return StateStore.open(url, upgrade=self.upgrade_on_open)
