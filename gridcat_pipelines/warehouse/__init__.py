"""Warehouse targets and the loader that copies exactly the authoritative run into them."""

from __future__ import annotations

from gridcat_pipelines.config import WAREHOUSE_KINDS, Settings
from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.warehouse.parquet_target import WarehouseTarget


def open_target(kind: str, *, root: str = "", url: str = "") -> WarehouseTarget:
    """The target of ``kind``: ``parquet`` (the dataset under ``root``), ``postgres`` (the
    database at ``url``) or ``iceberg`` (pyiceberg's ``gridcat`` catalog, else a SQLite catalog
    under ``root/iceberg``). The PostgreSQL and Iceberg libraries are imported only for their
    kind, so loading the code location does not pay for them."""
    if kind == "postgres":
        if not url:
            raise invalid_argument("warehouse kind 'postgres' needs a url (postgresql://...)")
        from gridcat_pipelines.warehouse.postgres_target import PostgresWarehouse

        return PostgresWarehouse(url)
    if kind not in WAREHOUSE_KINDS:
        raise invalid_argument(f"warehouse kind {kind!r} must be one of {', '.join(WAREHOUSE_KINDS)}")
    if not root:
        raise invalid_argument(f"warehouse kind {kind!r} needs a root directory or URI")
    if kind == "iceberg":
        from pathlib import Path

        from gridcat_pipelines.warehouse.iceberg_target import IcebergWarehouse

        return IcebergWarehouse.open(Path(root))
    from gridcat_pipelines.warehouse.parquet_target import ParquetWarehouse

    return ParquetWarehouse(root)


def open_warehouse(settings: Settings) -> WarehouseTarget:
    """The configured target (``GRIDCAT_WAREHOUSE``): PostgreSQL, Iceberg or the Parquet dataset."""
    return open_target(settings.warehouse_kind, root=settings.warehouse_location, url=settings.warehouse_url)
