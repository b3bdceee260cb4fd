"""The warehouse target resource."""

from __future__ import annotations

from functools import cached_property

import dagster as dg

from gridcat_pipelines.config import Settings
from gridcat_pipelines.warehouse.parquet_target import ParquetWarehouse


class WarehouseResource(dg.ConfigurableResource):
    """The embedded Parquet warehouse; empty ``root`` means ``$GRIDCAT_HOME/warehouse``."""

    root: str = ""

    @cached_property
    def warehouse(self) -> ParquetWarehouse:
        """The warehouse target."""
        return ParquetWarehouse(self.root or str(Settings.from_env().warehouse_root))
