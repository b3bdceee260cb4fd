"""A deterministic, realistic stand-in for the Google Ads API, with fault injection.

``SyntheticSource(seed).fetch(feed, customer, day)`` returns the same rows for the same
``(seed, customer, feed, day)``: per customer a stable set of campaigns, ad groups,
keywords, search terms and countries (:mod:`.entities`), and per day heavy-tailed
traffic (:mod:`.synthetic_feeds`). Rows whose metrics are all zero are omitted, as the API
does, and some days are legitimately empty (dark days; a sandbox account is dark most
days); **an empty day yields no batches**.

With a :class:`~gridcat_pipelines.sources.faults.FaultPlan`, the first pull of a faulty
partition gets one defect that fails exactly one validation rule (see
:mod:`.faults`), or fails the pull (``transient_error`` raises before any batch,
``crash_mid_write`` raises after the first batch).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.feeds.models import CustomerConfig, FeedConfig
from gridcat_pipelines.sources.base import SourceCrash, SourceError, TransientSourceError
from gridcat_pipelines.sources.entities import Universe, build_universe, rng_for
from gridcat_pipelines.sources.faults import WRONG_TYPES, FaultPlan, fault_target_column
from gridcat_pipelines.sources.synthetic_feeds import GENERATORS, Rows, click_view_rows

INVALID_ENUM_VALUE = "NOT_A_VALID_ENUM_VALUE"
_EPOCH = date(1970, 1, 1)
# Faults that need rows to exist (two, so one can stay unaltered); a schema fault on an
# empty day would yield no batches and go unnoticed, so it gets rows too.
_ROW_FAULTS = frozenset({"missing_column", "wrong_type", "negative_cost", "wrong_date",
                         "duplicate_primary_key", "mixed_currency", "invalid_enum",
                         "crash_mid_write"})
# entity tables rows may point into, by the index key the generators use
_ENTITY_TABLES = (("_campaign", "campaigns"), ("_ad_group", "ad_groups"),
                  ("_keyword", "keywords"), ("_term", "search_terms"), ("_country", "countries"))


class SyntheticSource:
    """Deterministic synthetic Google Ads reports (implements ``AdsSource``)."""

    name = "synthetic"

    def __init__(
        self,
        seed: int = 0,
        faults: FaultPlan | None = None,
        batch_rows: int = 500,
        scale: float = 1.0,
    ):
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise invalid_argument(f"seed must be an integer, got {seed!r}")
        if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
            raise invalid_argument(f"batch_rows must be a positive integer, got {batch_rows!r}")
        if not isinstance(scale, (int, float)) or not 0 < scale <= 10_000:
            raise invalid_argument(f"scale must be a number in (0, 10000], got {scale!r}")
        self.seed = seed
        self.faults = faults
        self.batch_rows = batch_rows
        self.scale = float(scale)
        self._universes: dict[tuple, Universe] = {}

    def fetch(
        self, feed: FeedConfig, customer: CustomerConfig, day: date, *, attempt: int = 0
    ) -> Iterator[pa.RecordBatch]:
        """Stream the partition as record batches of at most ``batch_rows`` rows.

        The fault (if any) is decided when called; errors surface while iterating.
        """
        fault = self.fault_for(feed, customer, day, attempt)
        return self._stream(feed, customer, day, fault)

    def fault_for(
        self, feed: FeedConfig, customer: CustomerConfig, day: date, attempt: int = 0
    ) -> str | None:
        """The fault kind this pull gets (None without a fault plan or after attempt 0)."""
        if self.faults is None:
            return None
        return self.faults.fault_for(customer.customer_id, feed, day, attempt)

    def _stream(
        self, feed: FeedConfig, customer: CustomerConfig, day: date, fault: str | None
    ) -> Iterator[pa.RecordBatch]:
        if fault == "transient_error":
            raise TransientSourceError(
                f"synthetic transient error (quota exhausted) pulling {feed.name} "
                f"for {customer.customer_id} on {day.isoformat()}"
            )
        table = self.table(feed, customer, day, fault=fault)
        if table.num_rows == 0:
            return
        chunk = self.batch_rows
        if fault == "crash_mid_write":
            chunk = min(chunk, (table.num_rows + 1) // 2)  # so there is a second batch
        batches = table.combine_chunks().to_batches(max_chunksize=chunk)
        for i, batch in enumerate(batches):
            if fault == "crash_mid_write" and i == 1:
                raise SourceCrash(
                    f"synthetic crash after {i} batch(es) of {feed.name} "
                    f"for {customer.customer_id} on {day.isoformat()}"
                )
            yield batch

    def table(
        self, feed: FeedConfig, customer: CustomerConfig, day: date, *, fault: str | None = None
    ) -> pa.Table:
        """The whole partition as one table, with ``fault``'s defect applied to the rows.

        ``crash_mid_write`` and ``transient_error`` do not alter rows (``fetch`` enacts them).
        """
        universe = self.universe(customer)
        activity = universe.activity(self.seed, day)
        rng = rng_for(self.seed, "rows", customer.customer_id, feed.name, day.isoformat())
        min_rows = 2 if fault in _ROW_FAULTS else 0
        scaled = activity * self.scale
        if feed.resource == "click_view":
            rows = click_view_rows(universe, scaled, rng, min_rows, self.scale)
        elif feed.resource in GENERATORS:
            rows = GENERATORS[feed.resource](universe, scaled, rng, min_rows)
        else:
            raise SourceError(f"the synthetic source cannot generate resource {feed.resource!r}")
        table = _assemble(feed, universe, day, rows)
        if fault is not None and fault not in ("crash_mid_write", "transient_error"):
            frng = rng_for(self.seed, "fault", customer.customer_id, feed.name, day.isoformat())
            table = apply_fault(table, feed, fault, frng, customer, day)
        return table

    def universe(self, customer: CustomerConfig) -> Universe:
        """The customer's stable entities (built once per source and customer)."""
        key = (customer.customer_id, customer.name, customer.currency, customer.time_zone,
               tuple(sorted(customer.tags.items())))
        if key not in self._universes:
            self._universes[key] = build_universe(self.seed, customer)
        return self._universes[key]


def _context(universe: Universe, day: date) -> dict[str, object]:
    customer = universe.customer
    return {
        "customer_id": int(customer.customer_id),
        "customer_currency_code": customer.currency,
        "customer_descriptive_name": customer.name,
        "customer_time_zone": customer.time_zone,
        "customer_status": "ENABLED",
        "customer_auto_tagging_enabled": True,
        "segments_date": (day - _EPOCH).days,
    }


def _assemble(feed: FeedConfig, universe: Universe, day: date, rows: Rows) -> pa.Table:
    """The rows as a table with exactly ``feed.arrow_schema()``."""
    n = len(next(iter(rows.values()))) if rows else 0
    context = _context(universe, day)
    arrays = []
    for col in feed.columns:
        values = rows.get(col.name)
        if values is None:
            values = _entity_column(universe, rows, col.name)
        if values is None and col.name in context:
            values = np.full(n, context[col.name], dtype=object if col.type == "string" else None)
        if values is None:
            if n and not col.nullable:
                raise SourceError(f"the synthetic source cannot generate column {col.name!r}")
            values = np.full(n, None, dtype=object)
        arrays.append(_to_arrow(values, col.arrow_type))
    return pa.Table.from_arrays(arrays, schema=feed.arrow_schema())


def _entity_column(universe: Universe, rows: Rows, name: str):
    for index_key, table_name in _ENTITY_TABLES:
        table = getattr(universe, table_name)
        if name in table and index_key in rows:
            return table[name][rows[index_key]]
    return None


def _to_arrow(values, arrow_type: pa.DataType) -> pa.Array:
    if isinstance(values, np.ma.MaskedArray):
        return pa.array(values.data, type=arrow_type, mask=np.ma.getmaskarray(values))
    if pa.types.is_date32(arrow_type) and values.dtype != object:
        return pa.array(values.astype(np.int32), type=arrow_type)
    return pa.array(values, type=arrow_type)


def _few(rng: np.random.Generator, candidates: np.ndarray, keep_one: bool) -> np.ndarray:
    """1-3 of ``candidates`` (leaving one untouched if ``keep_one`` and possible)."""
    limit = min(3, len(candidates) - (1 if keep_one and len(candidates) > 1 else 0))
    k = int(rng.integers(1, limit + 1))
    return np.sort(rng.choice(candidates, size=k, replace=False))


def _replace(table: pa.Table, name: str, at: np.ndarray, value) -> pa.Table:
    i = table.schema.get_field_index(name)
    column = table.column(i).combine_chunks()
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[at] = True
    new = pc.if_else(pa.array(mask), pa.scalar(value, type=column.type), column)
    return table.set_column(i, table.schema.field(i), new)


def apply_fault(
    table: pa.Table,
    feed: FeedConfig,
    kind: str,
    rng: np.random.Generator,
    customer: CustomerConfig,
    day: date,
) -> pa.Table:
    """``table`` with fault ``kind``'s defect (which fails exactly ``FAULT_RULE[kind]``)."""
    n = table.num_rows
    rows = np.arange(n)
    target = fault_target_column(feed, kind)
    if kind == "missing_column":
        return table.drop_columns([target])
    if kind == "wrong_type":
        i = table.schema.get_field_index(target)
        field = table.schema.field(i)
        wrong = WRONG_TYPES[feed.column(target).type]
        return table.set_column(i, field.with_type(wrong), table.column(i).cast(wrong, safe=False))
    if n == 0:
        raise SourceError(f"fault {kind!r} needs rows, but the partition is empty")
    if kind == "negative_cost":
        cost = np.array(table.column(target).to_numpy(), copy=True)
        at = _few(rng, np.flatnonzero(cost > 0), keep_one=False)
        cost[at] = -cost[at]
        i = table.schema.get_field_index(target)
        return table.set_column(i, table.schema.field(i), pa.array(cost, type=pa.int64()))
    if kind == "wrong_date":
        return _replace(table, target, _few(rng, rows, keep_one=True), day - timedelta(days=1))
    if kind == "duplicate_primary_key":
        at = _few(rng, rows, keep_one=False)
        return table.take(np.sort(np.concatenate([rows, at])))
    if kind == "mixed_currency":
        other = "EUR" if customer.currency == "USD" else "USD"
        return _replace(table, target, _few(rng, rows, keep_one=True), other)
    if kind == "invalid_enum":
        return _replace(table, target, _few(rng, rows, keep_one=True), INVALID_ENUM_VALUE)
    raise invalid_argument(f"fault {kind!r} does not alter rows")
