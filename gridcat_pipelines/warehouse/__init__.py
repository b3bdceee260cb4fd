"""Warehouse targets and the loader that copies exactly the authoritative run into them."""

from __future__ import annotations

from gridcat_pipelines.config import Settings


def open_warehouse(settings: Settings):
    """The configured target (``GRIDCAT_WAREHOUSE``): PostgreSQL, Iceberg or the Parquet dataset."""
    if settings.warehouse_kind == "postgres":
        from gridcat_pipelines.warehouse.postgres_target import PostgresWarehouse

        return PostgresWarehouse(settings.warehouse_url)
    if settings.warehouse_kind == "iceberg":
        from gridcat_pipelines.warehouse.iceberg_target import IcebergWarehouse

        return IcebergWarehouse.open(settings.home)
    from gridcat_pipelines.warehouse.parquet_target import ParquetWarehouse

    return ParquetWarehouse(str(settings.warehouse_root))
