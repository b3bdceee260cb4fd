"""Warehouse targets and the loader that copies exactly the authoritative run into them."""

from __future__ import annotations

from gridcat_pipelines.config import Settings


def open_warehouse(settings: Settings):
    """The configured target: PostgreSQL when ``warehouse_url`` is set, else the Parquet dataset."""
    if settings.warehouse_url:
        from gridcat_pipelines.warehouse.postgres_target import PostgresWarehouse

        return PostgresWarehouse(settings.warehouse_url)
    from gridcat_pipelines.warehouse.parquet_target import ParquetWarehouse

    return ParquetWarehouse(str(settings.warehouse_root))
