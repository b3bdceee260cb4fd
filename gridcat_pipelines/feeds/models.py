"""Feed and customer configuration as typed objects (loaded from ``config/*.yaml``).

A *feed* is one GAQL report: its query text, the Arrow columns it yields, its primary key,
its ``schema_version``, the JSON Schema every row must satisfy and its business rules.
Column names are the GAQL field paths with dots replaced by underscores
(``metrics.cost_micros`` -> ``metrics_cost_micros``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Any, ClassVar

import pyarrow as pa

# Arrow type names a feed column may declare, and the Arrow type each stands for.
ARROW_TYPES: dict[str, pa.DataType] = {
    "int64": pa.int64(),
    "double": pa.float64(),
    "string": pa.string(),
    "date32": pa.date32(),
    "bool": pa.bool_(),
}


def column_name(gaql_field: str) -> str:
    """The Arrow column name of a GAQL field: ``campaign.id`` -> ``campaign_id``."""
    return gaql_field.replace(".", "_")


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a feed: the GAQL field it comes from and its Arrow type."""

    field: str  # GAQL field path, e.g. "metrics.cost_micros"
    type: str  # a key of ARROW_TYPES
    nullable: bool = True
    description: str = ""

    @property
    def name(self) -> str:
        """The Arrow column name."""
        return column_name(self.field)

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type."""
        return ARROW_TYPES[self.type]


@dataclass(frozen=True, init=False, eq=False, repr=False)
class FeedRules(Mapping[str, Any]):
    """A feed's ``rules:`` settings, by key: ``rules.non_negative``, ``rules["date_column"]``.

    Which keys exist and their defaults belong to the validation rule registry
    (:mod:`gridcat_pipelines.validation.registry`; each key configures one rule, e.g.
    ``non_negative`` -> ``cost_non_negative``): the registry hands them over with
    :meth:`use_options` when it loads (and when a test activates another registry), so this
    module imports nothing of validation. Unset keys hold their default; an unknown key is a
    ``TypeError``, as for any keyword argument. Immutable; equal when the settings are;
    ``dataclasses.replace(rules, key=...)`` changes one setting and keeps the others.
    """

    _settings: Mapping[str, Any]
    _defaults: ClassVar[Mapping[str, Any]] = MappingProxyType({})

    @classmethod
    def use_options(cls, defaults: Mapping[str, Any]) -> None:
        """The rule settings that exist and their defaults (called by the rule registry)."""
        cls._defaults = MappingProxyType(dict(defaults))

    def __init__(self, _settings: Mapping[str, Any] | None = None, **settings: Any):
        options = FeedRules._defaults
        unknown = sorted(set(settings) - set(options))
        if unknown:
            raise TypeError(f"unknown rule setting(s) {', '.join(unknown)} (known: {', '.join(sorted(options))})")
        values = dict(options)
        values.update(_settings or {})
        for key, value in settings.items():
            values[key] = tuple(value) if isinstance(value, (list, tuple)) else value
        object.__setattr__(self, "_settings", MappingProxyType(values))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._settings[name]
        except KeyError:
            raise AttributeError(f"no rule setting {name!r}") from None

    def __getitem__(self, key: str) -> Any:
        return self._settings[key]

    def get(self, key: str, default: Any = None) -> Any:
        """The setting ``key``, or ``default`` if this feed's rules have no such key."""
        return self._settings.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._settings)

    def __len__(self) -> int:
        return len(self._settings)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FeedRules):
            return dict(self._settings) == dict(other._settings)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._settings.items())))

    def __repr__(self) -> str:
        return "FeedRules(" + ", ".join(f"{k}={v!r}" for k, v in self._settings.items()) + ")"

    def __reduce__(self) -> tuple:
        return (_feed_rules, (dict(self._settings),))


def _feed_rules(values: dict[str, Any]) -> FeedRules:
    """Unpickle a FeedRules as it was (whatever registry is active now)."""
    rules = object.__new__(FeedRules)
    object.__setattr__(rules, "_settings", MappingProxyType(dict(values)))
    return rules


@dataclass(frozen=True)
class FeedConfig:
    """One GAQL report ("feed")."""

    name: str  # query_name, e.g. "campaign"
    resource: str  # GAQL FROM resource, e.g. "campaign" or "customer"
    gaql: str  # full GAQL text with a '{date}' placeholder: ... WHERE segments.date = '{date}'
    columns: tuple[ColumnSpec, ...]
    primary_key: tuple[str, ...]  # column names
    schema_version: str
    row_schema: dict[str, Any]  # JSON Schema (draft 2020-12) one row (as a JSON object) must satisfy
    rules: FeedRules = field(default_factory=FeedRules)
    description: str = ""

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema a raw run of this feed must have, columns in config order."""
        return pa.schema([pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in self.columns])

    def query_for(self, day: date) -> str:
        """The GAQL text for one logical date."""
        return self.gaql.replace("{date}", day.isoformat())

    def column(self, name: str) -> ColumnSpec:
        """The column called ``name`` (KeyError if none)."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


@dataclass(frozen=True)
class CustomerConfig:
    """One Google Ads customer account the pipeline pulls."""

    customer_id: str  # digits only
    name: str
    time_zone: str  # IANA, e.g. "America/New_York"
    currency: str  # ISO 4217, e.g. "USD"
    tags: dict[str, str] = field(default_factory=dict)  # become the partition state's tags


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the ingestion pipeline is configured with."""

    feeds: dict[str, FeedConfig]
    customers: dict[str, CustomerConfig]
    start_date: date  # first date of the daily partitions
    lookback_days: int = 3  # the schedule pulls an account's newest complete day plus this many earlier days
    # a day is complete once it ended in the account's time zone at least this many hours ago
    settle_hours: float = 3.0
    # past this many customers, the customer partition dimension holds shards of customers
    # (crc32 of the customer id modulo ``shards``) instead of one partition per customer
    shard_above: int = 100
    shards: int = 16
    # the daily schedule packs each run with at most this many customer-days (customers x days)
    customer_days_per_run: int = 400
