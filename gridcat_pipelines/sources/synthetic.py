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

Which feeds it can generate: those whose GAQL resource has a row generator in
``GENERATORS`` (:mod:`.synthetic_feeds`) and whose columns that generator, the customer's
entity tables (:mod:`.entities`) or :func:`_context` provide (:func:`generation_gap` says
what is missing; the feed loader runs it, so such a feed fails config load).

For measuring concurrency without Google Ads it can simulate network latency:
``latency_ms`` is slept once per query when its stream starts producing (a request's
round-trip) and ``batch_delay_ms`` before each later batch (streaming). Both default to 0
(no sleep at all) and never change the rows; the sleeps are ``time.sleep``, which releases
the GIL, so pulls in threads overlap.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from functools import cache

import numpy as np
import pyarrow as pa
from jsonschema import Draft202012Validator

from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.feeds.models import CustomerConfig, FeedConfig
from gridcat_pipelines.sources.base import (
    SourceCrash,
    SourceError,
    TransientSourceError,
)
from gridcat_pipelines.sources.entities import Universe, build_universe, rng_for
from gridcat_pipelines.sources.faults import (
    FAULTS,
    INVALID_ENUM_VALUE,
    FaultPlan,
    apply_fault,
)
from gridcat_pipelines.sources.synthetic_feeds import GENERATORS, Rows
from gridcat_pipelines.validation.registry import active as active_rules

__all__ = ["INVALID_ENUM_VALUE", "SyntheticSource", "apply_fault", "generation_gap"]

_EPOCH = date(1970, 1, 1)
# entity tables rows may point into, by the index key the generators use
_ENTITY_TABLES = (
    ("_campaign", "campaigns"),
    ("_ad_group", "ad_groups"),
    ("_keyword", "keywords"),
    ("_term", "search_terms"),
    ("_country", "countries"),
)
_MAX_DELAY_MS = 600_000  # ten minutes: a larger simulated delay is a mistake


def _delay_ms(name: str, value: object) -> float:
    """``value`` as a delay in milliseconds, or an ``INVALID_ARGUMENT`` error."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= _MAX_DELAY_MS:
        raise invalid_argument(f"{name} must be a number in [0, {_MAX_DELAY_MS}] (milliseconds), got {value!r}")
    return float(value)


class SyntheticSource:
    """Deterministic synthetic Google Ads reports (implements ``AdsSource``).

    ``seed`` fixes the data, ``faults`` injects defects, ``batch_rows`` caps a batch's rows
    and ``scale`` multiplies the traffic. ``latency_ms`` (slept once per query, before its
    first batch or error) and ``batch_delay_ms`` (slept before each later batch) simulate
    network latency in milliseconds; they change timing only, never the rows.
    """

    name = "synthetic"

    def __init__(
        self,
        seed: int = 0,
        faults: FaultPlan | None = None,
        batch_rows: int = 500,
        scale: float = 1.0,
        *,
        latency_ms: float = 0.0,
        batch_delay_ms: float = 0.0,
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
        self.latency_ms = _delay_ms("latency_ms", latency_ms)
        self.batch_delay_ms = _delay_ms("batch_delay_ms", batch_delay_ms)
        self._universes: dict[tuple, Universe] = {}

    def fetch(
        self, feed: FeedConfig, customer: CustomerConfig, day: date, *, attempt: int = 0
    ) -> Iterator[pa.RecordBatch]:
        """Stream the partition as record batches of at most ``batch_rows`` rows.

        The fault (if any) is decided when called; errors surface while iterating. The
        simulated latency is slept while iterating too: ``latency_ms`` before the first batch
        (or error, or the end of an empty day), ``batch_delay_ms`` before each later one.
        """
        fault = self.fault_for(feed, customer, day, attempt)
        return self._stream(feed, customer, day, fault)

    def fault_for(self, feed: FeedConfig, customer: CustomerConfig, day: date, attempt: int = 0) -> str | None:
        """The fault kind this pull gets (None without a fault plan or after attempt 0)."""
        if self.faults is None:
            return None
        return self.faults.fault_for(customer.customer_id, feed, day, attempt)

    def _stream(
        self, feed: FeedConfig, customer: CustomerConfig, day: date, fault: str | None
    ) -> Iterator[pa.RecordBatch]:
        if self.latency_ms:  # the request's round-trip, before anything comes back
            time.sleep(self.latency_ms / 1000)
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
            if i and self.batch_delay_ms:  # streaming: the next batch arrives later
                time.sleep(self.batch_delay_ms / 1000)
            if fault == "crash_mid_write" and i == 1:
                raise SourceCrash(
                    f"synthetic crash after {i} batch(es) of {feed.name} "
                    f"for {customer.customer_id} on {day.isoformat()}"
                )
            yield batch

    def table(self, feed: FeedConfig, customer: CustomerConfig, day: date, *, fault: str | None = None) -> pa.Table:
        """The whole partition as one table, with ``fault``'s defect applied to the rows.

        ``crash_mid_write`` and ``transient_error`` do not alter rows (``fetch`` enacts them).
        """
        universe = self.universe(customer)
        activity = universe.activity(self.seed, day)
        rng = rng_for(self.seed, "rows", customer.customer_id, feed.name, day.isoformat())
        # Faults that need rows get two (so one can stay unaltered), even on a dark day; a
        # schema fault on an empty day would yield no batches and go unnoticed.
        min_rows = 2 if fault in FAULTS and FAULTS[fault].needs_rows else 0
        generate = GENERATORS.get(feed.resource)
        if generate is None:
            raise SourceError(f"the synthetic source cannot generate resource {feed.resource!r}: {_ADD_GENERATOR}")
        rows = generate(universe, activity * self.scale, rng, min_rows, self.scale)
        table = _assemble(feed, universe, day, rows)
        if fault is not None and (fault not in FAULTS or FAULTS[fault].alters_rows):  # unknown: apply_fault raises
            frng = rng_for(self.seed, "fault", customer.customer_id, feed.name, day.isoformat())
            table = apply_fault(table, feed, fault, frng, customer, day)
        return table

    def universe(self, customer: CustomerConfig) -> Universe:
        """The customer's stable entities (built once per source and customer)."""
        key = (
            customer.customer_id,
            customer.name,
            customer.currency,
            customer.time_zone,
            tuple(sorted(customer.tags.items())),
        )
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


# --------------------------------------------------------------------------- what it can generate

_ADD_GENERATOR = (
    "add a row generator for it to GENERATORS in gridcat_pipelines/sources/synthetic_feeds.py "
    "(see that module's docstring)"
)
_ADD_COLUMN = (
    "return it from the resource's generator in gridcat_pipelines/sources/synthetic_feeds.py, "
    "add it to an entity table in gridcat_pipelines/sources/entities.py, or to _context() in "
    "gridcat_pipelines/sources/synthetic.py"
)
_PROBE_CUSTOMER = CustomerConfig("1000000001", "Probe Account", "UTC", "USD")


@cache
def _generated_columns(resource: str) -> frozenset[str] | None:
    """The columns the synthetic source fills for ``resource`` (None: it has no generator).

    Found by running the generator once on a probe customer: its row columns, the columns of
    the entity tables its rows point into, and the per-partition context columns.
    """
    generate = GENERATORS.get(resource)
    if generate is None:
        return None
    universe = build_universe(0, _PROBE_CUSTOMER)
    rows = generate(universe, 1.0, rng_for("probe", resource), 2, 1.0)
    names = {name for name in rows if not name.startswith("_")}
    for index_key, table_name in _ENTITY_TABLES:
        if index_key in rows:
            names |= {name for name in getattr(universe, table_name) if not name.startswith("_")}
    names |= set(_context(universe, _EPOCH))
    return frozenset(names)


def _allows_null(feed: FeedConfig, column: str) -> bool:
    schema = feed.row_schema
    sub = schema.get("properties", {}).get(column, schema.get("additionalProperties", True))
    if isinstance(sub, bool):
        return sub
    return Draft202012Validator(sub).is_valid(None)


def generation_gap(feed: FeedConfig) -> tuple[str, str] | None:
    """Why the synthetic source cannot generate valid rows of ``feed``, or None if it can.

    The answer is ``(where, reason)``, ``where`` a path inside the feed's config entry
    (``resource``, ``columns[4]``). A column the source does not fill is null on every row,
    which is fine only for a nullable column that no validation rule reads and that the
    feed's row_schema lets be null.
    """
    produced = _generated_columns(feed.resource)
    if produced is None:
        return "resource", (
            f"the synthetic source cannot generate feed {feed.name!r}: it has no row generator "
            f"for resource {feed.resource!r}; {_ADD_GENERATOR}"
        )
    read = active_rules().columns_read(feed)
    for i, col in enumerate(feed.columns):
        if col.name in produced:
            continue
        if not col.nullable:
            why = "the column is nullable: false"
        elif col.name in read:
            why = "a validation rule reads it"
        elif not _allows_null(feed, col.name):
            why = "the feed's row_schema does not allow null in it"
        else:
            continue
        return f"columns[{i}]", (
            f"the synthetic source cannot generate column {col.name!r} of feed {feed.name!r} "
            f"(resource {feed.resource!r}): it would be null on every row, and {why}; {_ADD_COLUMN}"
        )
    return None
