"""The warehouse target resource."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import dagster as dg

from gridcat_pipelines.config import WAREHOUSE_KINDS
from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.warehouse.iceberg_target import IcebergWarehouse
from gridcat_pipelines.warehouse.parquet_target import ParquetWarehouse
from gridcat_pipelines.warehouse.postgres_target import PostgresWarehouse


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
    def warehouse(self) -> ParquetWarehouse | PostgresWarehouse | IcebergWarehouse:
        """The warehouse target."""
        if self.kind == "iceberg":
            return IcebergWarehouse.open(Path(self.root))
        if self.kind == "postgres":
            if not self.url:
                raise invalid_argument("warehouse kind 'postgres' needs a url (postgresql://...)")
            return PostgresWarehouse(self.url)
        if self.kind != "parquet":
            raise invalid_argument(f"warehouse kind {self.kind!r} must be one of {', '.join(WAREHOUSE_KINDS)}")
        if not self.root:
            raise invalid_argument("warehouse kind 'parquet' needs a root directory or URI")
        return ParquetWarehouse(self.root)
