"""The one ``Definitions`` object of the gridcat code location (``workspace.yaml`` loads it)."""

from __future__ import annotations

import dagster as dg

from gridcat_pipelines.defs.resources import StateStoreResource

defs = dg.Definitions(
    resources={"state_store": StateStoreResource()},
)
