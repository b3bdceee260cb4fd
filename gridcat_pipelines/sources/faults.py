"""Fault injection plan for the synthetic source: which partition gets which defect.

Each fault kind is designed to fail exactly one validation rule (``FAULT_RULE``) and no
other; ``crash_mid_write`` and ``transient_error`` fail the pull itself instead. Faults
only happen on a partition's first pull (``attempt == 0``), so a re-pull heals it.

The column a fault touches is chosen from the feed config (``fault_target_column``), always
outside the primary key and every business rule, so the defect cannot leak into a second
rule:

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType

import pyarrow as pa

from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.feeds.models import FeedConfig
from gridcat_pipelines.state.keys import normalize_customer_id, parse_date

FAULT_KINDS: tuple[str, ...] = (
    "missing_column",
    "wrong_type",
    "negative_cost",
    "wrong_date",
    "duplicate_primary_key",
    "mixed_currency",
    "invalid_enum",
    "crash_mid_write",
    "transient_error",
)

# The validation rule each fault must fail (None: the pull fails, nothing is validated).
FAULT_RULE: dict[str, str | None] = {
    "missing_column": "schema",
    "wrong_type": "schema",
    "negative_cost": "cost_non_negative",
    "wrong_date": "date_matches_partition",
    "duplicate_primary_key": "primary_key_unique",
    "mixed_currency": "single_currency",
    "invalid_enum": "row_schema",
    "crash_mid_write": None,
    "transient_error": None,
}

COST_COLUMN = "metrics_cost_micros"

# The Arrow type a ``wrong_type`` fault emits instead of the configured one.
WRONG_TYPES: dict[str, pa.DataType] = {
    "double": pa.float32(),
    "int64": pa.int32(),
    "string": pa.large_string(),
}


def rule_columns(feed: FeedConfig) -> set[str]:
    """Columns a primary key or business rule reads (a fault must not disturb them)."""
    rules = feed.rules
    used = set(feed.primary_key) | set(rules.non_negative) | set(rules.not_null)
    used.add(rules.date_column)
    if rules.currency_column:
        used.add(rules.currency_column)
    if rules.clicks_le_impressions:
        used |= {"metrics_clicks", "metrics_impressions"}
    return used


def _free_columns(feed: FeedConfig):
    used = rule_columns(feed)
    return [c for c in feed.columns if c.name not in used]


def _enum_of(feed: FeedConfig, column: str) -> list | None:
    prop = feed.row_schema.get("properties", {}).get(column, {})
    return prop.get("enum") if isinstance(prop, dict) else None


def fault_target_column(feed: FeedConfig, kind: str) -> str | None:
    """The column fault ``kind`` alters in ``feed``, or None if it alters no single column.

    None for a column-fault kind means the kind does not apply to this feed.
    """
    free = _free_columns(feed)
    if kind == "missing_column":
        plain = [c for c in free if c.type == "string" and _enum_of(feed, c.name) is None]
        chosen = plain or free
        return chosen[0].name if chosen else None
    if kind == "wrong_type":
        for type_name in ("double", "int64", "string"):
            for col in free:
                if col.type == type_name:
                    return col.name
        return None
    if kind == "invalid_enum":
        enums = [c for c in free if c.type == "string" and _enum_of(feed, c.name)]
        enums.sort(key=lambda c: c.nullable)  # stable: non-nullable first
        return enums[0].name if enums else None
    if kind == "negative_cost":
        return COST_COLUMN if COST_COLUMN in feed.rules.non_negative else None
    if kind == "wrong_date":
        return feed.rules.date_column
    if kind == "mixed_currency":
        return feed.rules.currency_column
    return None


def applicable_kinds(feed: FeedConfig, kinds: tuple[str, ...] = FAULT_KINDS) -> tuple[str, ...]:
    """The fault kinds (among ``kinds``) the synthetic source can inject into ``feed``."""
    names = {c.name for c in feed.columns}
    out = []
    for kind in kinds:
        if kind in ("crash_mid_write", "transient_error"):
            out.append(kind)
        elif kind == "duplicate_primary_key":
            if feed.primary_key:
                out.append(kind)
        else:
            target = fault_target_column(feed, kind)
            if target is not None and target in names:
                out.append(kind)
    return tuple(out)


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
                raise invalid_argument(
                    f"forced fault key {key!r} must be (customer_id, query_name, date)"
                )
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

    def fault_for(
        self, customer_id: str, feed: FeedConfig, day: date | str, attempt: int = 0
    ) -> str | None:
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
                raise invalid_argument(
                    f"forced fault {forced!r} cannot apply to feed {feed.name!r}"
                )
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
