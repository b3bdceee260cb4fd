"""The warehouse target resource."""

from __future__ import annotations

from functools import cached_property

import dagster as dg

from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.warehouse.parquet_target import ParquetWarehouse
from gridcat_pipelines.warehouse.postgres_target import PostgresWarehouse

WAREHOUSE_KINDS = ("parquet", "postgres")


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse target: ``kind`` ``parquet`` (the embedded default: the dataset under
    ``root``) or ``postgres`` (schema ``google_ads`` in the database at ``url``, e.g.
    ``postgresql://user@host:5432/warehouse``; give it as ``dg.EnvVar``)."""

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
        if not self.root:
            raise invalid_argument("warehouse kind 'parquet' needs a root directory or URI")
        return ParquetWarehouse(self.root)
