"""Per-column statistics of a raw run, computed batch by batch with ``pyarrow.compute``.

For every column the stats are::

    {"null_count": int, "min": ..., "max": ..., "distinct_estimate": int | None,
     "distinct_exact": bool}

- ``min``/``max`` are JSON-safe: dates, times and timestamps as ISO 8601 strings, decimals
  as strings, binaries as hex, booleans and numbers as themselves. They are ``None`` when the
  column has no non-null value, for types without an order (lists, structs, maps, ...) and
  for floating-point extremes that are not finite (NaN, +-inf). Arrow's ``min_max`` skips
  NaN, so a float column with a NaN still reports the min/max of its other values.
- ``distinct_estimate`` counts distinct non-null values. It is *exact* while the column has
  at most ``EXACT_DISTINCT_LIMIT`` (65,536) distinct values: the accumulator keeps the
  distinct values themselves (``pc.unique``), so low-cardinality columns such as currency,
  status or the date are counted exactly (``distinct_exact: true``). Past that limit the
  kept values are hashed into a HyperLogLog (p=14, 16 KiB per column, ~0.8 % standard
  error) and only the sketch is kept from then on (``distinct_exact: false``). Memory per
  column is therefore bounded by a few limits' worth of values (plus one batch), whatever
  the run size.
  ``None`` for types that can be neither de-duplicated nor hashed (e.g. lists). Floats
  are compared bitwise, as Arrow's ``unique`` does: NaN counts as a value.
- Durations have no ``min``/``max`` (Arrow's ``min_max`` has no kernel for them).

:class:`StatsAccumulator` folds batches one at a time (min of mins, max of maxes, sum of
null counts, union of distinct sets / sketches); :func:`column_stats` runs it over a table.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from gridcat_pipelines.raw_sink.hll import HyperLogLog, hash_array

EXACT_DISTINCT_LIMIT = 65_536
_MIN_CONSOLIDATE = 8_192  # pending distinct values buffered before a unique() pass


def _orderable(t: pa.DataType) -> bool:
    """Whether Arrow's ``min_max`` orders values of type ``t``."""
    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_decimal(t)
        or pa.types.is_temporal(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
    )


def _json_value(scalar: pa.Scalar | None) -> Any:
    """A min/max scalar as a JSON-safe value (see the module docstring)."""
    if scalar is None or not scalar.is_valid:
        return None
    t = scalar.type
    value = scalar.as_py()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if pa.types.is_decimal(t):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class _ColumnAccumulator:
    """Running stats of one column."""

    def __init__(self, dtype: pa.DataType):
        self.type = dtype.value_type if pa.types.is_dictionary(dtype) else dtype
        self.null_count = 0
        self.min: pa.Scalar | None = None
        self.max: pa.Scalar | None = None
        self.orderable = _orderable(self.type)
        self.distinct_supported = True
        self.exact: pa.Array | None = None  # distinct values so far, while exact
        self.pending: list[pa.Array] = []  # per-batch distinct values not yet merged
        self.pending_len = 0
        self.sketch: HyperLogLog | None = None

    def update(self, arr: pa.Array) -> None:
        """Fold one batch's column into the running stats."""
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        self.null_count += arr.null_count
        if len(arr) == arr.null_count:
            return
        if self.orderable:
            self._update_min_max(arr)
        if self.distinct_supported:
            self._update_distinct(arr)

    def _update_min_max(self, arr: pa.Array) -> None:
        try:
            mm = pc.min_max(arr)
        except pa.ArrowNotImplementedError:  # e.g. durations: treated as unordered
            self.orderable, self.min, self.max = False, None, None
            return
        lo, hi = mm["min"], mm["max"]
        if self.min is not None:
            lo = pc.min_max(pa.array([self.min, lo], type=self.type))["min"]
            hi = pc.min_max(pa.array([self.max, hi], type=self.type))["max"]
        self.min, self.max = lo, hi

    def _update_distinct(self, arr: pa.Array) -> None:
        if self.sketch is not None:
            self._sketch_add(arr)
            return
        try:
            values = pc.unique(pc.drop_null(arr))
        except pa.ArrowNotImplementedError:
            self.distinct_supported = False
            return
        self.pending.append(values)
        self.pending_len += len(values)
        if len(values) > EXACT_DISTINCT_LIMIT:  # no need to merge to know it is too many
            self._start_sketch()
            return
        # Amortised: merge only once the buffer is as large as what is already merged.
        if self.pending_len >= max(_MIN_CONSOLIDATE, len(self.exact) if self.exact is not None else 0):
            self._consolidate()

    def _consolidate(self) -> None:
        parts = ([self.exact] if self.exact is not None else []) + self.pending
        self.pending, self.pending_len = [], 0
        if not parts:
            return
        merged = pc.unique(pa.chunked_array(parts, type=parts[0].type))
        self.exact = merged.combine_chunks() if isinstance(merged, pa.ChunkedArray) else merged
        if len(self.exact) > EXACT_DISTINCT_LIMIT:
            self._start_sketch()

    def _start_sketch(self) -> None:
        """Switch from exact values to a HyperLogLog fed with everything kept so far."""
        kept = ([self.exact] if self.exact is not None else []) + self.pending
        self.exact, self.pending, self.pending_len = None, [], 0
        self.sketch = HyperLogLog()
        for values in kept:
            if self.sketch is not None:
                self._sketch_add(values)

    def _sketch_add(self, arr: pa.Array) -> None:
        hashes = hash_array(arr)
        if hashes is None:
            self.sketch = None
            self.distinct_supported = False
            return
        assert self.sketch is not None
        self.sketch.add(hashes)

    def result(self) -> dict[str, Any]:
        """The column's stats as a JSON-safe dict."""
        if self.distinct_supported and self.sketch is None:
            self._consolidate()
        if not self.distinct_supported:
            distinct, exact = None, False
        elif self.sketch is not None:
            distinct, exact = self.sketch.estimate(), False
        else:
            distinct, exact = (len(self.exact) if self.exact is not None else 0), True
        return {
            "null_count": self.null_count,
            "min": _json_value(self.min),
            "max": _json_value(self.max),
            "distinct_estimate": distinct,
            "distinct_exact": exact,
        }


class StatsAccumulator:
    """Column stats folded over record batches of one schema, without keeping the batches."""

    def __init__(self, schema: pa.Schema):
        self.schema = schema
        self._columns = [_ColumnAccumulator(f.type) for f in schema]

    def update(self, batch: pa.RecordBatch) -> None:
        """Fold one batch (it must have this accumulator's schema's columns, in order)."""
        if batch.num_columns != len(self._columns):
            raise ValueError(f"batch has {batch.num_columns} columns, the stats schema has {len(self._columns)}")
        for acc, column in zip(self._columns, batch.columns):
            acc.update(column)

    def result(self) -> dict[str, dict[str, Any]]:
        """``{column name: stats}`` in schema order (see the module docstring for the keys)."""
        return {f.name: acc.result() for f, acc in zip(self.schema, self._columns)}


def column_stats(table: pa.Table) -> dict[str, dict[str, Any]]:
    """Stats of every column of ``table`` (computed chunk by chunk, see the module docstring)."""
    acc = StatsAccumulator(table.schema)
    for batch in table.to_batches():
        acc.update(batch)
    return acc.result()
