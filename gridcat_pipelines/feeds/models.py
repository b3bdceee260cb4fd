"""Feed and customer configuration as typed objects (loaded from ``config/*.yaml``).

A *feed* is one GAQL report: its query text, the Arrow columns it yields, its primary key,
its ``schema_version``, the JSON Schema every row must satisfy and its business rules.
Column names are the GAQL field paths with dots replaced by underscores
(``metrics.cost_micros`` -> ``metrics_cost_micros``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

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


@dataclass(frozen=True)
class FeedRules:
    """Business rules of a feed; each maps to one named validation rule (and asset check).

    ``non_negative``: columns that must be >= 0 (rule ``cost_non_negative``).
    ``clicks_le_impressions``: ``metrics_clicks <= metrics_impressions`` per row
    (rule ``clicks_le_impressions``; off for feeds that segment by click type).
    ``date_column``: must equal the partition's logical date (rule ``date_matches_partition``).
    ``not_null``: id columns that must not be null (rule ``ids_not_null``).
    ``currency_column``: one distinct value per partition (rule ``single_currency``).
    """

    non_negative: tuple[str, ...] = ()
    clicks_le_impressions: bool = False
    date_column: str = "segments_date"
    not_null: tuple[str, ...] = ()
    currency_column: str | None = None


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
    lookback_days: int = 3  # the schedule pulls yesterday plus this many earlier days
