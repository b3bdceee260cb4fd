"""JSON views of registry and job rows, with the tag-facet contract's field names."""

from __future__ import annotations

from typing import Any

from gridcat_pipelines.timestamps import iso_utc


def facet_json(row: Any) -> dict[str, Any]:
    """A registry row as ListFacets prints it."""
    return {
        "facet_id": str(row.facet_id),
        "key_name": row.key_name,
        "column_name": row.column_name,
        "projection_column": row.column_name,
        "status": row.status,
        "create_index": bool(row.create_index),
        "error": row.error,
        "reason": row.reason,
        "promotion_started_at": iso_utc(row.promotion_started_at),
        "last_refresh_started_at": iso_utc(row.last_refresh_started_at),
        "last_refresh_succeeded_at": iso_utc(row.last_refresh_succeeded_at),
        "disabled_at": iso_utc(row.disabled_at),
        "created_at": iso_utc(row.created_at),
        "updated_at": iso_utc(row.updated_at),
    }


def eta_seconds(row: Any) -> float | None:
    """Seconds left at the rate so far; 0 when finished, None before the first batch."""
    if row.status == "SUCCEEDED":
        return 0.0
    if row.status != "RUNNING" or not row.started_at or not row.rows_processed or row.rows_total is None:
        return None
    elapsed = (row.updated_at - row.started_at).total_seconds()
    if elapsed <= 0:
        return None
    left = max(row.rows_total - row.rows_processed, 0)
    return round(left / (row.rows_processed / elapsed), 3)


def job_json(row: Any) -> dict[str, Any]:
    """A backfill job row as FacetBackfillStatus answers (``status`` at the top level)."""
    return {
        "job_id": str(row.job_id),
        "facet_id": str(row.facet_id),
        "mode": row.mode,
        "batch_size": row.batch_size,
        "status": row.status,
        "rows_total": row.rows_total,
        "rows_processed": row.rows_processed,
        "rows_updated": row.rows_updated,
        "failures": row.failures,
        "batches": row.batches,
        "error": row.error,
        "created_at": iso_utc(row.created_at),
        "started_at": iso_utc(row.started_at),
        "updated_at": iso_utc(row.updated_at),
        "finished_at": iso_utc(row.finished_at),
        "eta_seconds": eta_seconds(row),
    }
