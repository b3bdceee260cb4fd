"""The row-level business rules of a feed, each a few vectorised ``pyarrow.compute`` calls.

Every function takes the table (whose needed columns the caller has checked are present and
typed as declared) and returns a :class:`Verdict` with the exact failing row count and up
to five sample rows. An empty table passes every one of them. The functions do not know
their rule's name: each is the ``check`` of one entry of
:mod:`gridcat_pipelines.validation.registry`, which names, configures and orders the rules.
A new row rule is usually a boolean mask of failing rows passed to :func:`mask_verdict`.
"""

from __future__ import annotations

from datetime import date
from functools import reduce

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gridcat_pipelines.feeds.models import CustomerConfig, FeedConfig
from gridcat_pipelines.validation.samples import json_safe, sample_rows
from gridcat_pipelines.validation.verdict import MAX_SAMPLES, Verdict

CLICKS_COLUMN = "metrics_clicks"
IMPRESSIONS_COLUMN = "metrics_impressions"


def _count(mask: pa.ChunkedArray) -> int:
    return int(pc.sum(mask).as_py() or 0)


def _plural(n: int, word: str = "row") -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def mask_verdict(table: pa.Table, mask: pa.ChunkedArray, what: str, columns: list[str], ok_message: str) -> Verdict:
    """Passed if ``mask`` (true = the row fails; never null) has no true value, else failed
    with the count, ``"<n> rows <what>"`` and sample rows showing ``columns``."""
    count = _count(mask)
    if count == 0:
        return Verdict.ok(ok_message)
    return Verdict.fail(count, f"{_plural(count)} {what}", sample_rows(table, mask, columns))


def sample_columns(feed: FeedConfig, table: pa.Table, *extra: str) -> list[str]:
    """Columns shown in a sample: the primary key, then the columns the rule looked at."""
    present = set(table.column_names)
    return list(dict.fromkeys(c for c in (*feed.primary_key, *extra) if c in present))


def cost_non_negative(table: pa.Table, feed: FeedConfig) -> Verdict:
    """Rule ``cost_non_negative``: each ``rules.non_negative`` column is >= 0 (nulls and NaN pass)."""
    columns = list(feed.rules.non_negative)
    masks = [pc.fill_null(pc.less(table.column(c), 0), False) for c in columns]
    mask = reduce(pc.or_, masks)
    return mask_verdict(
        table,
        mask,
        f"with a negative value in {', '.join(columns)}",
        sample_columns(feed, table, *columns),
        f"{', '.join(columns)} >= 0 on {_plural(table.num_rows)}",
    )


def clicks_le_impressions(table: pa.Table, feed: FeedConfig) -> Verdict:
    """Rule ``clicks_le_impressions``: ``metrics_clicks <= metrics_impressions`` where both are non-null."""
    mask = pc.fill_null(pc.greater(table.column(CLICKS_COLUMN), table.column(IMPRESSIONS_COLUMN)), False)
    return mask_verdict(
        table,
        mask,
        "with more clicks than impressions",
        sample_columns(feed, table, CLICKS_COLUMN, IMPRESSIONS_COLUMN),
        f"clicks <= impressions on {_plural(table.num_rows)}",
    )


def date_matches_partition(table: pa.Table, feed: FeedConfig, logical_date: date) -> Verdict:
    """Rule ``date_matches_partition``: every row's ``rules.date_column`` equals the logical date.

    A null date does not match. A date32 column is compared as a date, a string column
    with the ISO text ``YYYY-MM-DD``.
    """
    name = feed.rules.date_column
    column = table.column(name)
    want = (
        pa.scalar(logical_date, pa.date32())
        if pa.types.is_date32(column.type)
        else pa.scalar(logical_date.isoformat(), column.type)
    )
    mask = pc.invert(pc.fill_null(pc.equal(column, want), False))
    return mask_verdict(
        table,
        mask,
        f"with {name} other than the partition date {logical_date.isoformat()}",
        sample_columns(feed, table, name),
        f"{name} = {logical_date.isoformat()} on {_plural(table.num_rows)}",
    )


def ids_not_null(table: pa.Table, feed: FeedConfig) -> Verdict:
    """Rule ``ids_not_null``: no null in any ``rules.not_null`` column (failing count: rows with one)."""
    columns = list(feed.rules.not_null)
    mask = reduce(pc.or_, [pc.is_null(table.column(c)) for c in columns])
    return mask_verdict(
        table,
        mask,
        f"with a null in {', '.join(columns)}",
        sample_columns(feed, table, *columns),
        f"{', '.join(columns)} set on {_plural(table.num_rows)}",
    )


def primary_key_unique(table: pa.Table, feed: FeedConfig) -> Verdict:
    """Rule ``primary_key_unique``: no two rows share ``feed.primary_key``.

    Hash-grouped (``Table.group_by``); null is a key value like any other. The failing
    count is the number of rows in duplicated groups (two copies of one key: 2 rows).
    Key columns holding one value on every row (the customer, the date) cannot tell rows
    apart and are left out. Fast path for integer, date, bool and string keys: a 64-bit
    hash per row (numpy), sorted; all hashes distinct proves all keys distinct. Otherwise
    (a duplicate, a hash collision, or a float key column) the exact grouping runs, single-threaded,
    which for keys that are (nearly) all distinct beats merging per-thread hash tables.
    """
    pk = list(feed.primary_key)
    if table.num_rows < 2:
        return Verdict.ok(f"{_plural(table.num_rows)}, no duplicate key")
    varying = [c for c in pk if not _constant(table.column(c))]
    if varying and _distinct_by_hash(table, varying):
        return Verdict.ok(f"{_plural(table.num_rows)}, all keys distinct")
    if not varying:  # every row has the same key
        groups = table.select(pk).slice(0, 1).append_column("count_all", pa.array([table.num_rows], pa.int64()))
    else:
        groups = table.select(varying).group_by(varying, use_threads=False).aggregate([([], "count_all")])
    if groups.num_rows == table.num_rows:
        return Verdict.ok(f"{_plural(table.num_rows)}, all keys distinct")
    dups = groups.filter(pc.greater(groups.column("count_all"), 1))
    constants = {c: table.column(c)[0].as_py() for c in pk if c not in varying}
    count = _count(dups.column("count_all"))
    samples = []
    for group in dups.slice(0, MAX_SAMPLES).to_pylist():
        copies = group.pop("count_all")
        key = {c: group[c] if c in group else constants[c] for c in pk}
        samples.append({"key": json_safe(key), "copies": copies, "rows": _rows_with_key(table, key)})
    message = (
        f"{_plural(count)} share a primary key ({', '.join(pk)}) with another row: "
        f"{_plural(dups.num_rows, 'duplicated key')}"
    )
    return Verdict.fail(count, message, samples)


_HASHABLE = (pa.types.is_integer, pa.types.is_date32, pa.types.is_boolean, pa.types.is_string)
_MIX_1 = np.uint64(0x9E3779B97F4A7C15)
_MIX_2 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_3 = np.uint64(0x94D049BB133111EB)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise (uint64 arithmetic wraps)."""
    h = h ^ (h >> np.uint64(30))
    h = h * _MIX_2
    h = h ^ (h >> np.uint64(27))
    h = h * _MIX_3
    return h ^ (h >> np.uint64(31))


def _distinct_by_hash(table: pa.Table, columns: list[str]) -> bool:
    """True only if the rows' keys over ``columns`` are certainly all distinct.

    Equal keys (null included) hash equal, so distinct hashes prove distinct keys; False
    means "unknown" (equal hashes, or a column type this does not hash). Strings are
    hashed by their index in the column's dictionary (one dictionary across all chunks).
    """
    if not all(any(test(table.schema.field(c).type) for test in _HASHABLE) for c in columns):
        return False
    if len(columns) == 1 and pa.types.is_string(table.schema.field(columns[0]).type):
        return False  # encoding one string column costs what grouping on it does
    h = np.zeros(table.num_rows, dtype=np.uint64)
    for name in columns:
        column = table.column(name)
        if pa.types.is_string(column.type):
            encoded = pc.dictionary_encode(column)
            column = pa.chunked_array([chunk.indices for chunk in encoded.chunks], pa.int32())
        elif pa.types.is_date32(column.type) or pa.types.is_boolean(column.type):
            column = pc.cast(column, pa.int32())
        values = pc.fill_null(column, 0).to_numpy().astype(np.int64).view(np.uint64)
        h = _mix(h * _MIX_1 + values)
        if column.null_count:
            h = _mix(h * _MIX_1 + pc.is_null(column).to_numpy().astype(np.uint64))
    h.sort()
    return not bool(np.any(h[1:] == h[:-1]))


def _constant(column: pa.ChunkedArray) -> bool:
    """Whether every value of ``column`` is the same (all null counts as the same)."""
    nulls = column.null_count
    if nulls == len(column):
        return True
    if nulls or pa.types.is_floating(column.type):  # NaN and -0.0 make min == max unreliable
        return False
    bounds = pc.min_max(column)
    return bounds["min"] == bounds["max"]


def _rows_with_key(table: pa.Table, key: dict, limit: int = MAX_SAMPLES) -> list[int]:
    """Positions of the first rows whose primary key equals ``key`` (null equals null)."""
    masks = []
    for name, value in key.items():
        column = table.column(name)
        if value is None:
            masks.append(pc.is_null(column))
        else:
            masks.append(pc.fill_null(pc.equal(column, pa.scalar(value, column.type)), False))
    indices = pc.indices_nonzero(reduce(pc.and_, masks))
    return [int(i) for i in indices.slice(0, limit).to_pylist()]


def single_currency(table: pa.Table, feed: FeedConfig, customer: CustomerConfig | None = None) -> Verdict:
    """Rule ``single_currency``: every non-null ``rules.currency_column`` value is one currency.

    Without a customer the expected currency is the most frequent one (ties: the
    alphabetically first); with a customer it is the customer's configured currency, so a
    partition all in another currency fails too. The failing count is the number of non-null
    rows in another currency. Nulls are not a currency and never fail this rule.
    """
    name = feed.rules.currency_column
    assert name is not None
    column = table.column(name)
    if column.null_count == 0 and len(column) and _constant(column):
        seen = {column[0].as_py(): len(column)}  # the usual case, without hashing every row
    else:
        seen = {c["values"]: c["counts"] for c in pc.value_counts(pc.drop_null(column)).to_pylist()}
    if not seen:
        return Verdict.ok("no currency values")
    if customer is not None and customer.currency:
        expected, why = customer.currency, f"customer {customer.customer_id}'s configured currency"
    else:
        expected = sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        why = "the majority currency"
    failing = sum(n for cur, n in seen.items() if cur != expected)
    if failing == 0:
        return Verdict.ok(f"all {_plural(seen[expected])} in {expected}")
    mask = pc.fill_null(pc.not_equal(column, pa.scalar(expected, column.type)), False)
    found = ", ".join(f"{cur} ({n})" for cur, n in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0])))
    message = f"{_plural(failing)} not in {expected} ({why}); currencies found: {found}"
    return Verdict.fail(failing, message, sample_rows(table, mask, sample_columns(feed, table, name)))
