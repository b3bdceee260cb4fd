"""The synthetic source's faults, and the plan of which partition gets which.

Each fault kind that alters rows is designed to fail exactly one validation rule, and no
other: the rule that names it in ``faults=`` in the rule registry
(:mod:`gridcat_pipelines.validation.registry`; ``FAULT_RULE`` is derived from it).
``crash_mid_write`` and ``transient_error`` fail the pull itself instead. Faults only
happen on a partition's first pull (``attempt == 0``), so a re-pull heals it.

A fault is one :class:`Fault` entry of :data:`FAULTS` (its order is the order random draws
pick from: append new faults at the end). The column a fault touches is chosen from the
feed config (``fault_target_column``), always outside the primary key and every column a
validation rule reads (``rule_columns``, from the registry), so the defect cannot leak into
a second rule:

- ``missing_column``: the first free string column without an ``enum`` (a name or text
  column), else any free column, is dropped (row_schema has no ``required``);
- ``wrong_type``: the first free ``double`` column (else ``int64``, else ``string``) is
  emitted one Arrow type narrower/wider in the same JSON family (double -> float32,
  int64 -> int32, string -> large_string), so row_schema's JSON types still hold;
- ``invalid_enum``: the first free column whose row_schema property has an ``enum``
  (non-nullable ones first).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.feeds.models import CustomerConfig, FeedConfig
from gridcat_pipelines.sources.base import SourceError
from gridcat_pipelines.state.keys import normalize_customer_id, parse_date
from gridcat_pipelines.validation.registry import DEFAULT as DEFAULT_RULES
from gridcat_pipelines.validation.registry import active as active_rules

COST_COLUMN = "metrics_cost_micros"
INVALID_ENUM_VALUE = "NOT_A_VALID_ENUM_VALUE"

# The Arrow type a ``wrong_type`` fault emits instead of the configured one.
WRONG_TYPES: dict[str, pa.DataType] = {
    "double": pa.float32(),
    "int64": pa.int32(),
    "string": pa.large_string(),
}

# apply(table, feed, target column, rng, customer, day) -> the table with the defect
Apply = Callable[[pa.Table, FeedConfig, "str | None", np.random.Generator, CustomerConfig, date], pa.Table]


@dataclass(frozen=True)
class Fault:
    """One fault kind of the synthetic source.

    ``target(feed)``: the column it alters (None: it does not apply to the feed); no
    ``target``: it alters no single column. ``requires(feed)``: when it applies otherwise.
    ``apply``: alters the partition's rows (None: a pull fault, enacted by the source while
    streaming). ``needs_rows``: the partition gets at least two rows, even on a dark day.
    """

    name: str
    apply: Apply | None = None
    target: Callable[[FeedConfig], str | None] | None = None
    requires: Callable[[FeedConfig], bool] | None = None
    needs_rows: bool = True

    @property
    def alters_rows(self) -> bool:
        """Whether the fault alters the rows (and so must fail exactly one validation rule)."""
        return self.apply is not None

    def applies_to(self, feed: FeedConfig) -> bool:
        """Whether the synthetic source can inject this fault into ``feed``."""
        if self.requires is not None and not self.requires(feed):
            return False
        if self.target is None:
            return True
        target = self.target(feed)
        return target is not None and target in {c.name for c in feed.columns}


def rule_columns(feed: FeedConfig) -> set[str]:
    """Columns a validation rule reads, primary key included (a fault must not disturb them)."""
    return active_rules().columns_read(feed)


def _free_columns(feed: FeedConfig):
    used = rule_columns(feed)
    return [c for c in feed.columns if c.name not in used]


def _enum_of(feed: FeedConfig, column: str) -> list | None:
    prop = feed.row_schema.get("properties", {}).get(column, {})
    return prop.get("enum") if isinstance(prop, dict) else None


# --------------------------------------------------------------------------- targets


def _plain_free_column(feed: FeedConfig) -> str | None:
    free = _free_columns(feed)
    plain = [c for c in free if c.type == "string" and _enum_of(feed, c.name) is None]
    chosen = plain or free
    return chosen[0].name if chosen else None


def _typed_free_column(feed: FeedConfig) -> str | None:
    free = _free_columns(feed)
    for type_name in ("double", "int64", "string"):
        for col in free:
            if col.type == type_name:
                return col.name
    return None


def _enum_free_column(feed: FeedConfig) -> str | None:
    enums = [c for c in _free_columns(feed) if c.type == "string" and _enum_of(feed, c.name)]
    enums.sort(key=lambda c: c.nullable)  # stable: non-nullable first
    return enums[0].name if enums else None


# --------------------------------------------------------------------------- defects


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


def _rows(table: pa.Table, kind: str) -> np.ndarray:
    if table.num_rows == 0:
        raise SourceError(f"fault {kind!r} needs rows, but the partition is empty")
    return np.arange(table.num_rows)


def _drop_column(table, feed, target, rng, customer, day):
    return table.drop_columns([target])


def _retype_column(table, feed, target, rng, customer, day):
    i = table.schema.get_field_index(target)
    wrong = WRONG_TYPES[feed.column(target).type]
    return table.set_column(i, table.schema.field(i).with_type(wrong), table.column(i).cast(wrong, safe=False))


def _negate_cost(table, feed, target, rng, customer, day):
    _rows(table, "negative_cost")
    cost = np.array(table.column(target).to_numpy(), copy=True)
    at = _few(rng, np.flatnonzero(cost > 0), keep_one=False)
    cost[at] = -cost[at]
    i = table.schema.get_field_index(target)
    return table.set_column(i, table.schema.field(i), pa.array(cost, type=pa.int64()))


def _shift_date(table, feed, target, rng, customer, day):
    rows = _rows(table, "wrong_date")
    return _replace(table, target, _few(rng, rows, keep_one=True), day - timedelta(days=1))


def _duplicate_rows(table, feed, target, rng, customer, day):
    rows = _rows(table, "duplicate_primary_key")
    at = _few(rng, rows, keep_one=False)
    return table.take(np.sort(np.concatenate([rows, at])))


def _other_currency(table, feed, target, rng, customer, day):
    rows = _rows(table, "mixed_currency")
    other = "EUR" if customer.currency == "USD" else "USD"
    return _replace(table, target, _few(rng, rows, keep_one=True), other)


def _bad_enum(table, feed, target, rng, customer, day):
    rows = _rows(table, "invalid_enum")
    return _replace(table, target, _few(rng, rows, keep_one=True), INVALID_ENUM_VALUE)


# --------------------------------------------------------------------------- the faults

FAULTS: Mapping[str, Fault] = MappingProxyType(
    {
        fault.name: fault
        for fault in (
            Fault("missing_column", _drop_column, target=_plain_free_column),
            Fault("wrong_type", _retype_column, target=_typed_free_column),
            Fault(
                "negative_cost",
                _negate_cost,
                target=lambda feed: COST_COLUMN if COST_COLUMN in feed.rules.non_negative else None,
            ),
            Fault("wrong_date", _shift_date, target=lambda feed: feed.rules.date_column),
            Fault("duplicate_primary_key", _duplicate_rows, requires=lambda feed: bool(feed.primary_key)),
            Fault("mixed_currency", _other_currency, target=lambda feed: feed.rules.currency_column),
            Fault("invalid_enum", _bad_enum, target=_enum_free_column),
            Fault("crash_mid_write"),  # the source raises after the first batch
            Fault("transient_error", needs_rows=False),  # the source raises before any batch
        )
    }
)

FAULT_KINDS: tuple[str, ...] = tuple(FAULTS)


def _fault_rules() -> dict[str, str | None]:
    """The validation rule each fault must fail (None: the pull fails, nothing is validated)."""
    claimed = DEFAULT_RULES.fault_rule
    unknown = sorted(set(claimed) - set(FAULTS))
    if unknown:
        raise RuntimeError(
            f"validation rule(s) {sorted({claimed[f] for f in unknown})} name fault(s) {unknown} that "
            "gridcat_pipelines/sources/faults.py does not define: add them to FAULTS"
        )
    unclaimed = [name for name, fault in FAULTS.items() if fault.alters_rows and name not in claimed]
    if unclaimed:
        raise RuntimeError(
            f"fault(s) {unclaimed} alter rows but no validation rule names them: add each to the "
            "faults= of the rule it fails in gridcat_pipelines/validation/registry.py"
        )
    return {name: claimed.get(name) if fault.alters_rows else None for name, fault in FAULTS.items()}


# The validation rule each fault must fail (None: the pull fails, nothing is validated).
FAULT_RULE: dict[str, str | None] = _fault_rules()


def fault_target_column(feed: FeedConfig, kind: str) -> str | None:
    """The column fault ``kind`` alters in ``feed``, or None if it alters no single column.

    None for a column-fault kind means the kind does not apply to this feed.
    """
    fault = FAULTS.get(kind)
    if fault is None or fault.target is None:
        return None
    return fault.target(feed)


def applicable_kinds(feed: FeedConfig, kinds: tuple[str, ...] = FAULT_KINDS) -> tuple[str, ...]:
    """The fault kinds (among ``kinds``) the synthetic source can inject into ``feed``."""
    return tuple(kind for kind in kinds if kind in FAULTS and FAULTS[kind].applies_to(feed))


def apply_fault(
    table: pa.Table,
    feed: FeedConfig,
    kind: str,
    rng: np.random.Generator,
    customer: CustomerConfig,
    day: date,
) -> pa.Table:
    """``table`` with fault ``kind``'s defect (which fails exactly ``FAULT_RULE[kind]``)."""
    fault = FAULTS.get(kind)
    if fault is None or fault.apply is None:
        raise invalid_argument(f"fault {kind!r} does not alter rows")
    return fault.apply(table, feed, fault_target_column(feed, kind), rng, customer, day)


def _check_kind(kind: object, where: str) -> str:
    if kind not in FAULT_KINDS:
        known = ", ".join(FAULT_KINDS)
        raise invalid_argument(f"{where}: unknown fault kind {kind!r} (one of {known})")
    return kind  # type: ignore[return-value]


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()


@dataclass(frozen=True)
class FaultPlan:
    """Which partitions of a synthetic pull get a fault, decided deterministically.

    ``rate`` is the share of partitions (customer x feed x day) that get a fault on their
    first pull; the kind is drawn among ``kinds`` that apply to the feed. ``forced`` maps
    ``(customer_id, query_name, "YYYY-MM-DD")`` to a kind and wins over the draw.
    """

    seed: int
    rate: float
    kinds: tuple[str, ...] = FAULT_KINDS
    forced: Mapping[tuple[str, str, str], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise invalid_argument(f"fault seed must be an integer, got {self.seed!r}")
        if isinstance(self.rate, bool) or not isinstance(self.rate, (int, float)):
            raise invalid_argument(f"fault rate must be a number in [0, 1], got {self.rate!r}")
        if not 0.0 <= float(self.rate) <= 1.0:
            raise invalid_argument(f"fault rate must be in [0, 1], got {self.rate!r}")
        kinds = tuple(self.kinds) if not isinstance(self.kinds, str) else (self.kinds,)
        if not kinds:
            raise invalid_argument("fault kinds must not be empty")
        for kind in kinds:
            _check_kind(kind, "fault kinds")
        if len(set(kinds)) != len(kinds):
            raise invalid_argument(f"fault kinds repeat a kind: {kinds}")
        forced: dict[tuple[str, str, str], str] = {}
        for key, kind in dict(self.forced).items():
            if not isinstance(key, tuple) or len(key) != 3:
                raise invalid_argument(f"forced fault key {key!r} must be (customer_id, query_name, date)")
            customer, query, day = key
            norm = (
                normalize_customer_id(customer),
                str(query),
                parse_date(day, "forced date").isoformat(),
            )
            forced[norm] = _check_kind(kind, f"forced fault {key!r}")
        object.__setattr__(self, "rate", float(self.rate))
        object.__setattr__(self, "kinds", kinds)
        object.__setattr__(self, "forced", MappingProxyType(forced))

    def fault_for(self, customer_id: str, feed: FeedConfig, day: date | str, attempt: int = 0) -> str | None:
        """The fault kind to inject into this pull, or None (always None after attempt 0).

        A forced kind that cannot apply to ``feed`` is ``INVALID_ARGUMENT``.
        """
        if attempt != 0:
            return None
        customer = normalize_customer_id(customer_id)
        iso = parse_date(day).isoformat()
        forced = self.forced.get((customer, feed.name, iso))
        if forced is not None:
            if forced not in applicable_kinds(feed, (forced,)):
                raise invalid_argument(f"forced fault {forced!r} cannot apply to feed {feed.name!r}")
            return forced
        if self.rate <= 0.0:
            return None
        digest = _digest("fault", self.seed, customer, feed.name, iso)
        draw = int.from_bytes(digest[:8], "big") / 2.0**64
        if draw >= self.rate:
            return None
        kinds = applicable_kinds(feed, self.kinds)
        if not kinds:
            return None
        return kinds[int.from_bytes(digest[8:16], "big") % len(kinds)]
