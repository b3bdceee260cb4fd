"""JSON-safe sample rows for rule results (at most a handful per rule, never the partition)."""

from __future__ import annotations

import base64
import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from gridcat_pipelines.validation.verdict import MAX_SAMPLES


def json_safe(value: Any) -> Any:
    """``value`` as something ``json.dumps`` writes faithfully.

    Dates become ISO strings, non-finite floats the strings ``"NaN"``, ``"Infinity"`` and
    ``"-Infinity"``, bytes base64, decimals strings; lists and dicts are converted inside.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return str(value)


def first_indices(mask: pa.ChunkedArray | pa.Array, limit: int = MAX_SAMPLES) -> list[int]:
    """The positions of the first ``limit`` true values of a boolean mask (nulls count as false)."""
    indices = pc.indices_nonzero(mask)
    if isinstance(indices, pa.ChunkedArray):
        indices = indices.combine_chunks()
    return [int(i) for i in indices.slice(0, limit).to_pylist()]


def row_at(table: pa.Table, index: int, columns: list[str] | None = None) -> dict[str, Any]:
    """Row ``index`` of ``table`` as a JSON-safe dict (optionally only ``columns``)."""
    part = table.slice(index, 1)
    if columns is not None:
        part = part.select([c for c in columns if c in part.column_names])
    rows = part.to_pylist()
    return json_safe(rows[0]) if rows else {}


def sample_rows(
    table: pa.Table, mask: pa.ChunkedArray | pa.Array, columns: list[str] | None = None
) -> list[dict[str, Any]]:
    """Up to :data:`MAX_SAMPLES` rows where ``mask`` is true, as ``{"row": i, "values": {...}}``."""
    return [{"row": i, "values": row_at(table, i, columns)} for i in first_indices(mask)]
