"""Warehouse retention: expire old Iceberg snapshots, then delete the files none of the kept
ones references. One implementation for ``gridcat retention`` and the Dagster
``warehouse_retention`` job.

Only the Iceberg target keeps snapshots. The Parquet and PostgreSQL targets replace a slice in
place and leave nothing behind, so there is nothing to expire or sweep for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gridcat_pipelines.errors import invalid_argument

if TYPE_CHECKING:  # pyiceberg is imported only where the Iceberg target is used
    from gridcat_pipelines.warehouse.iceberg_files import FilesRemoved

SNAPSHOT_DAYS = 7.0  # snapshots kept by default: time travel that far back
ORPHAN_DAYS = 3.0  # unreferenced files younger than this stay (a load may be committing them)
MIN_ORPHAN_DAYS = 1 / 24  # never under an hour: a staged load's files are seconds old when it commits


@dataclass(frozen=True)
class WarehouseRetention:
    """What one retention pass over the Iceberg tables expired and removed (or would)."""

    snapshot_days: float
    expired: dict[str, int]
    orphan_days: float
    removed: dict[str, FilesRemoved]
    dry_run: bool

    def to_json(self) -> dict[str, Any]:
        """``{"warehouse_snapshots": {...}, "warehouse_orphans": {...}}`` as ``gridcat retention --json``
        prints them."""
        return {
            "warehouse_snapshots": {
                "older_than_days": self.snapshot_days,
                "expired": self.expired,
                "dry_run": self.dry_run,
            },
            "warehouse_orphans": {
                "older_than_days": self.orphan_days,
                "removed": {table: files.to_json() for table, files in self.removed.items()},
                "dry_run": self.dry_run,
            },
        }


def check_ages(
    snapshot_days: float,
    orphan_days: float,
    names: tuple[str, str] = ("snapshots_older_than_days", "orphans_older_than_days"),
) -> None:
    """``INVALID_ARGUMENT`` naming the setting (``names``: how the caller spells the two ages)
    for an age that is not finite or negative, or an orphan age under an hour."""
    for name, days in zip(names, (snapshot_days, orphan_days), strict=True):
        if not math.isfinite(days):
            raise invalid_argument(f"{name} {days:g} is not a finite number of days")
        if days < 0:
            raise invalid_argument(f"{name} {days:g} is negative")
    if orphan_days < MIN_ORPHAN_DAYS:
        raise invalid_argument(
            f"{names[1]} must be at least {MIN_ORPHAN_DAYS:.4f} days (1 hour): a younger unreferenced "
            "file may belong to a load that is about to commit it"
        )


def apply_warehouse_retention(
    warehouse: Any,
    *,
    snapshot_days: float = SNAPSHOT_DAYS,
    orphan_days: float = ORPHAN_DAYS,
    dry_run: bool = False,
    now: datetime | None = None,
) -> WarehouseRetention:
    """Expire ``warehouse``'s (an ``IcebergWarehouse``) snapshots older than ``snapshot_days``
    (never a table's current one), then delete the files no kept snapshot references that are
    older than ``orphan_days``. ``dry_run``: count, change nothing; the files counted include
    those the expiry would free. The ages are checked first."""
    check_ages(snapshot_days, orphan_days)
    now = now or datetime.now(UTC)
    snapshot_cutoff = now - timedelta(days=snapshot_days)
    expired = warehouse.expire_snapshots(snapshot_cutoff, dry_run=dry_run)
    removed = warehouse.remove_unreferenced_files(
        now - timedelta(days=orphan_days), dry_run=dry_run, snapshots_from=snapshot_cutoff if dry_run else None
    )
    return WarehouseRetention(snapshot_days, expired, orphan_days, removed, dry_run)
