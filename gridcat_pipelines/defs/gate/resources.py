"""The warehouse target resource."""

from __future__ import annotations

from functools import cached_property

import dagster as dg

from gridcat_pipelines.config import Settings
from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.warehouse.parquet_target import ParquetWarehouse
from gridcat_pipelines.warehouse.postgres_target import PostgresWarehouse

WAREHOUSE_KINDS = ("parquet", "postgres")


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse target: ``kind`` ``parquet`` (embedded default; empty ``root`` means
    ``$GRIDCAT_HOME/warehouse``) or ``postgres`` (schema ``google_ads`` in the database at
    ``url``, e.g. ``postgresql://user@host:5432/warehouse``)."""

    root: str = ""
    kind: str = "parquet"
    url: str = ""

    @cached_property
    def warehouse(self) -> ParquetWarehouse | PostgresWarehouse:
        """The warehouse target."""
        if self.kind == "postgres":
            if not self.url:
                raise invalid_argument("warehouse kind 'postgres' needs a url (postgresql://...)")
            return PostgresWarehouse(self.url)
        if self.kind != "parquet":
            raise invalid_argument(f"warehouse kind {self.kind!r} must be one of {', '.join(WAREHOUSE_KINDS)}")
        return ParquetWarehouse(self.root or str(Settings.from_env().warehouse_root))
