"""The warehouse target resource."""

from __future__ import annotations

from functools import cached_property

import dagster as dg

from gridcat_pipelines.warehouse import open_target
from gridcat_pipelines.warehouse.parquet_target import WarehouseTarget


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse target: ``kind`` ``parquet`` (the embedded default: the dataset under
    ``root``), ``postgres`` (schema ``google_ads`` in the database at ``url``, e.g.
    ``postgresql://user@host:5432/warehouse``; give it as ``dg.EnvVar``) or ``iceberg`` (tables
    ``google_ads.<feed>`` in pyiceberg's ``gridcat`` catalog; without one configured, a SQLite
    catalog under ``root/iceberg``, ``root`` being ``GRIDCAT_HOME``)."""

    root: str = ""
    kind: str = "parquet"
    url: str = ""

    @cached_property
    def warehouse(self) -> WarehouseTarget:
        """The warehouse target."""
        return open_target(self.kind, root=self.root, url=self.url)
