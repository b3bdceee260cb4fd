"""The named validation rules, which of them apply to a feed, and what each one needs.

Every rule becomes one Dagster asset check and one clause of a failed partition's error
message. ``RULES`` fixes their order everywhere (reports, messages, checks).
"""

from __future__ import annotations

from gridcat_pipelines.feeds.models import FeedConfig

SCHEMA = "schema"
METADATA_CONSISTENCY = "metadata_consistency"
ROW_SCHEMA = "row_schema"
COST_NON_NEGATIVE = "cost_non_negative"
CLICKS_LE_IMPRESSIONS = "clicks_le_impressions"
DATE_MATCHES_PARTITION = "date_matches_partition"
IDS_NOT_NULL = "ids_not_null"
PRIMARY_KEY_UNIQUE = "primary_key_unique"
SINGLE_CURRENCY = "single_currency"

RULES: tuple[str, ...] = (
    SCHEMA,
    METADATA_CONSISTENCY,
    ROW_SCHEMA,
    COST_NON_NEGATIVE,
    CLICKS_LE_IMPRESSIONS,
    DATE_MATCHES_PARTITION,
    IDS_NOT_NULL,
    PRIMARY_KEY_UNIQUE,
    SINGLE_CURRENCY,
)

# Rules a partition cannot pass without: a report passes only if these ran and passed.
STRUCTURAL_RULES: tuple[str, ...] = (SCHEMA, METADATA_CONSISTENCY)

# What a rule's failing count counts (used in error messages).
RULE_UNITS: dict[str, str] = {
    SCHEMA: "column",
    METADATA_CONSISTENCY: "problem",
    **{rule: "row" for rule in RULES[2:]},
}

RULE_DESCRIPTIONS: dict[str, str] = {
    SCHEMA: "every feed column is present with its declared Arrow type, and no other column is",
    METADATA_CONSISTENCY: "metadata.json matches the data: run id, schema version, record count, file sizes and checksums",
    ROW_SCHEMA: "every row satisfies the feed's JSON Schema (draft 2020-12)",
    COST_NON_NEGATIVE: "the feed's non-negative columns are >= 0 (nulls allowed)",
    CLICKS_LE_IMPRESSIONS: "metrics_clicks <= metrics_impressions where both are present",
    DATE_MATCHES_PARTITION: "every row's date equals the partition's logical date",
    IDS_NOT_NULL: "the feed's id columns have no nulls",
    PRIMARY_KEY_UNIQUE: "no two rows share the feed's primary key",
    SINGLE_CURRENCY: "one currency per partition, and it is the customer's configured currency when known",
}

CLICKS_COLUMN = "metrics_clicks"
IMPRESSIONS_COLUMN = "metrics_impressions"


def rules_for(feed: FeedConfig) -> tuple[str, ...]:
    """The rules that apply to ``feed``, in ``RULES`` order.

    ``schema``, ``metadata_consistency``, ``row_schema`` and ``date_matches_partition``
    always apply; ``primary_key_unique`` when the feed declares a primary key;
    ``cost_non_negative`` with ``rules.non_negative`` columns; ``clicks_le_impressions``
    when ``rules.clicks_le_impressions``; ``ids_not_null`` with ``rules.not_null`` columns;
    ``single_currency`` with a ``rules.currency_column``.
    """
    applies = {
        SCHEMA: True,
        METADATA_CONSISTENCY: True,
        ROW_SCHEMA: True,
        COST_NON_NEGATIVE: bool(feed.rules.non_negative),
        CLICKS_LE_IMPRESSIONS: bool(feed.rules.clicks_le_impressions),
        DATE_MATCHES_PARTITION: True,
        IDS_NOT_NULL: bool(feed.rules.not_null),
        PRIMARY_KEY_UNIQUE: bool(feed.primary_key),
        SINGLE_CURRENCY: feed.rules.currency_column is not None,
    }
    return tuple(rule for rule in RULES if applies[rule])


def columns_needed(feed: FeedConfig, rule: str) -> tuple[str, ...]:
    """The columns a row-level business rule reads; the rule is skipped if any is missing or mistyped.

    ``schema`` and ``metadata_consistency`` need no column; ``row_schema`` evaluates each
    property on its own (see :mod:`gridcat_pipelines.validation.json_schema`).
    """
    rules = feed.rules
    needed: dict[str, tuple[str, ...]] = {
        COST_NON_NEGATIVE: tuple(rules.non_negative),
        CLICKS_LE_IMPRESSIONS: (CLICKS_COLUMN, IMPRESSIONS_COLUMN),
        DATE_MATCHES_PARTITION: (rules.date_column,),
        IDS_NOT_NULL: tuple(rules.not_null),
        PRIMARY_KEY_UNIQUE: tuple(feed.primary_key),
        SINGLE_CURRENCY: () if rules.currency_column is None else (rules.currency_column,),
    }
    return needed.get(rule, ())
