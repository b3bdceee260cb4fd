"""The validation rule registry: each rule is one :class:`Rule` entry of :data:`RULES`.

An entry is everything the pipeline knows about a rule:

``name``         the rule's name: its asset check, its clause in a failed partition's error
                 message, its key in reports (a published name: never rename one)
``description``  the asset check's description
``option``       the key under a feed's ``rules:`` in ``config/google_apis.yaml`` that turns
                 it on / configures it (:func:`column_list`, :func:`one_column`, :func:`flag`);
                 the feed loader parses and checks it, the feed reads it as ``feed.rules.<key>``
``applies``      which feeds it applies to (default: those that set ``option``; every feed if
                 the rule has no option)
``columns``      the columns it reads (default: the ones ``option`` names); the rule is
                 skipped on a run where one is missing or mistyped, and synthetic faults
                 leave these columns alone
``check``        the vectorised check, ``check(ctx: RuleContext) -> Verdict`` (no per-row Python)
``faults``       the synthetic source's fault kinds (:mod:`gridcat_pipelines.sources.faults`)
                 that make this rule, and only it, fail
``unit``         what its failing count counts (``row``, ``column``, ``problem``)
``structural``   a report passes only if every structural rule ran and passed
``owns_keywords`` row_schema keywords its columns must not carry (so one defect fails one rule)

:data:`RULES` fixes the order everywhere (reports, error messages, asset checks). Read by the
validator (what runs), the report (names, units, order, structural rules), the feed loader
and :class:`~gridcat_pipelines.feeds.models.FeedRules` (the config keys and their defaults),
the synthetic faults (which fault fails which rule, which columns faults must not touch) and
the Dagster asset checks. Nothing else lists rules.

Consumers read the *active* registry (:func:`active`): :data:`DEFAULT` unless a test or an
experiment swapped in another with :func:`activate` (e.g. ``DEFAULT.extended(my_rule)``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

import pyarrow as pa

from gridcat_pipelines.feeds.models import (
    ARROW_TYPES,
    CustomerConfig,
    FeedConfig,
    FeedRules,
)
from gridcat_pipelines.state.keys import PartitionKey
from gridcat_pipelines.validation import business_rules
from gridcat_pipelines.validation.json_schema import CompiledRowSchema, row_schema_for
from gridcat_pipelines.validation.structural_checks import check_metadata, check_schema
from gridcat_pipelines.validation.verdict import Verdict

# The three rules the validator itself relies on (schema decides which columns the other
# rules may read; metadata_consistency reports runs that cannot be read at all).
SCHEMA = "schema"
METADATA_CONSISTENCY = "metadata_consistency"
ROW_SCHEMA = "row_schema"

COLUMNS, COLUMN, FLAG = "columns", "column", "flag"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


# --------------------------------------------------------------------------- rule options


@dataclass(frozen=True)
class Option:
    """A key under a feed's ``rules:`` that configures one rule (build with the helpers below).

    ``kind``: ``columns`` (a list of column names, default ``[]``), ``column`` (one column
    name, default ``default``; ``None`` means unset) or ``flag`` (true/false, default false).
    ``types``: the column types the named columns may have (empty: any). ``needs``: for a
    flag, the columns a feed must have to turn it on (also the columns the rule reads).
    """

    key: str
    kind: str
    types: tuple[str, ...] = ()
    default: Any = None
    needs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in (COLUMNS, COLUMN, FLAG):
            raise ValueError(f"rule option {self.key!r}: unknown kind {self.kind!r}")
        if not _NAME_RE.match(self.key):
            raise ValueError(f"rule option {self.key!r} must match {_NAME_RE.pattern}")
        unknown = [t for t in self.types if t not in ARROW_TYPES]
        if unknown:
            raise ValueError(f"rule option {self.key!r}: unknown column type(s) {unknown}")
        if self.kind == COLUMNS:
            object.__setattr__(self, "default", tuple(self.default or ()))
        elif self.kind == FLAG:
            object.__setattr__(self, "default", bool(self.default))

    def is_set(self, value: Any) -> bool:
        """Whether ``value`` (the feed's setting) turns the rule on."""
        return value is not None if self.kind == COLUMN else bool(value)

    def columns(self, value: Any) -> tuple[str, ...]:
        """The columns ``value`` makes the rule read."""
        if self.kind == COLUMNS:
            return tuple(value or ())
        if self.kind == COLUMN:
            return () if value is None else (value,)
        return tuple(self.needs) if value else ()


def column_list(key: str, *, types: tuple[str, ...] = ()) -> Option:
    """``rules.<key>: [col, ...]``: the rule applies when the list is not empty."""
    return Option(key, COLUMNS, types=tuple(types))


def one_column(key: str, *, types: tuple[str, ...] = (), default: str | None = None) -> Option:
    """``rules.<key>: col``: the rule applies when a column is set (or ``default`` is not None)."""
    return Option(key, COLUMN, types=tuple(types), default=default)


def flag(key: str, *, needs: tuple[str, ...] = ()) -> Option:
    """``rules.<key>: true``: the rule applies when true; the feed must have ``needs`` columns."""
    return Option(key, FLAG, needs=tuple(needs))


# --------------------------------------------------------------------------- what a check reads


class RuleContext:
    """One run as the checks see it: its rows, the feed, the partition and what is known about it.

    ``usable`` is the set of feed columns present with their declared type (computed once by
    the ``schema`` check); a rule's ``check`` is only called when every column it declares
    is usable.
    """

    def __init__(
        self,
        table: pa.Table,
        feed: FeedConfig,
        logical_date: date,
        *,
        metadata: Any = None,
        customer: CustomerConfig | None = None,
        key: PartitionKey | None = None,
        run_id: str | None = None,
        file_problems: Iterable[str] = (),
        row_schema: CompiledRowSchema | None = None,
    ):
        self.table = table
        self.feed = feed
        self.logical_date = logical_date
        self.metadata = metadata
        self.customer = customer
        self.key = key
        self.run_id = run_id
        self.file_problems = tuple(file_problems)
        self.row_schema = row_schema

    @cached_property
    def schema_check(self) -> tuple[Verdict, frozenset[str]]:
        """The ``schema`` verdict and the usable columns."""
        return check_schema(self.table.schema, self.feed)

    @property
    def usable(self) -> frozenset[str]:
        """Feed columns present once with their declared type."""
        return self.schema_check[1]


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    """One validation rule (see the module docstring for what each field means)."""

    name: str
    description: str
    check: Callable[[RuleContext], Verdict]
    option: Option | None = None
    applies: Callable[[FeedConfig], bool] | None = None
    columns: Callable[[FeedConfig], Iterable[str]] | None = None
    faults: tuple[str, ...] = ()
    unit: str = "row"
    structural: bool = False
    owns_keywords: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"rule name {self.name!r} must match {_NAME_RE.pattern}")
        if not self.description.strip() or not self.unit.strip():
            raise ValueError(f"rule {self.name!r} needs a description and a unit")
        object.__setattr__(self, "faults", tuple(self.faults))
        object.__setattr__(self, "owns_keywords", tuple(self.owns_keywords))

    def setting(self, feed: FeedConfig) -> Any:
        """The feed's value of this rule's option (its default if the feed has none)."""
        if self.option is None:
            return None
        return feed.rules.get(self.option.key, self.option.default)

    def applies_to(self, feed: FeedConfig) -> bool:
        """Whether the rule applies to ``feed`` (and so is one of its asset checks)."""
        if self.applies is not None:
            return bool(self.applies(feed))
        return self.option is None or self.option.is_set(self.setting(feed))

    def columns_of(self, feed: FeedConfig) -> tuple[str, ...]:
        """The columns the rule reads in ``feed``."""
        if self.columns is not None:
            return tuple(self.columns(feed))
        return () if self.option is None else self.option.columns(self.setting(feed))


class RuleRegistry:
    """An ordered, checked set of rules, with the lookups the consumers need."""

    def __init__(self, rules: Iterable[Rule]):
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.by_name: dict[str, Rule] = {}
        self.options: dict[str, Option] = {}
        self.fault_rule: dict[str, str] = {}
        for rule in self.rules:
            if rule.name in self.by_name:
                raise ValueError(f"duplicate rule {rule.name!r}")
            self.by_name[rule.name] = rule
            if rule.option is not None:
                key = rule.option.key
                if key in self.options:
                    raise ValueError(f"rule option {key!r} is used by two rules")
                if hasattr(FeedRules, key):
                    raise ValueError(f"rule option {key!r} clashes with a FeedRules attribute")
                self.options[key] = rule.option
            for fault in rule.faults:
                if fault in self.fault_rule:
                    raise ValueError(f"fault {fault!r} is claimed by {self.fault_rule[fault]!r} and {rule.name!r}")
                self.fault_rule[fault] = rule.name
        self.names: tuple[str, ...] = tuple(self.by_name)
        self.index: dict[str, int] = {name: i for i, name in enumerate(self.names)}
        self.structural: tuple[str, ...] = tuple(r.name for r in self.rules if r.structural)
        for name in (SCHEMA, METADATA_CONSISTENCY):
            if name not in self.by_name or not self.by_name[name].structural:
                raise ValueError(f"a rule registry needs the structural rule {name!r}")

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __getitem__(self, name: str) -> Rule:
        return self.by_name[name]

    def for_feed(self, feed: FeedConfig) -> tuple[Rule, ...]:
        """The rules that apply to ``feed``, in registry order."""
        return tuple(rule for rule in self.rules if rule.applies_to(feed))

    def names_for(self, feed: FeedConfig) -> tuple[str, ...]:
        """The names of the rules that apply to ``feed``, in registry order."""
        return tuple(rule.name for rule in self.for_feed(feed))

    def columns_read(self, feed: FeedConfig) -> set[str]:
        """Every column some rule applying to ``feed`` reads."""
        return {c for rule in self.for_feed(feed) for c in rule.columns_of(feed)}

    def extended(self, *rules: Rule) -> RuleRegistry:
        """This registry with ``rules`` appended."""
        return RuleRegistry((*self.rules, *rules))


# --------------------------------------------------------------------------- the checks of the structural rules


def _metadata_consistency(ctx: RuleContext) -> Verdict:
    return check_metadata(
        ctx.metadata,
        ctx.feed,
        row_count=ctx.table.num_rows,
        schema=ctx.table.schema,
        run_id=ctx.run_id,
        key=ctx.key,
        file_problems=ctx.file_problems,
    )


def _row_schema(ctx: RuleContext) -> Verdict:
    compiled = ctx.row_schema if ctx.row_schema is not None else row_schema_for(ctx.feed)
    verdict = compiled.evaluate(ctx.table, ctx.usable)
    if compiled.checks and not verdict.checked_columns:
        return Verdict.skip(verdict.message())
    if verdict.passed:
        return Verdict.ok(verdict.message())
    return Verdict.fail(verdict.failing_rows, verdict.message(), verdict.samples)


# --------------------------------------------------------------------------- THE registry

RULES: tuple[Rule, ...] = (
    Rule(
        name=SCHEMA,
        description="every feed column is present with its declared Arrow type, and no other column is",
        check=lambda ctx: ctx.schema_check[0],
        unit="column",
        structural=True,
        faults=("missing_column", "wrong_type"),
    ),
    Rule(
        name=METADATA_CONSISTENCY,
        description="metadata.json matches the data: run id, schema version, record count, file sizes and checksums",
        check=_metadata_consistency,
        unit="problem",
        structural=True,
    ),
    Rule(
        name=ROW_SCHEMA,
        description="every row satisfies the feed's JSON Schema (draft 2020-12)",
        check=_row_schema,
        faults=("invalid_enum",),
    ),
    Rule(
        name="cost_non_negative",
        description="the feed's non-negative columns are >= 0 (nulls allowed)",
        option=column_list("non_negative", types=("int64", "double")),
        check=lambda ctx: business_rules.cost_non_negative(ctx.table, ctx.feed),
        faults=("negative_cost",),
        owns_keywords=("minimum", "exclusiveMinimum"),
    ),
    Rule(
        name="clicks_le_impressions",
        description="metrics_clicks <= metrics_impressions where both are present",
        option=flag(
            "clicks_le_impressions",
            needs=(business_rules.CLICKS_COLUMN, business_rules.IMPRESSIONS_COLUMN),
        ),
        check=lambda ctx: business_rules.clicks_le_impressions(ctx.table, ctx.feed),
    ),
    Rule(
        name="date_matches_partition",
        description="every row's date equals the partition's logical date",
        option=one_column("date_column", types=("date32",), default="segments_date"),
        check=lambda ctx: business_rules.date_matches_partition(ctx.table, ctx.feed, ctx.logical_date),
        faults=("wrong_date",),
    ),
    Rule(
        name="ids_not_null",
        description="the feed's id columns have no nulls",
        option=column_list("not_null"),
        check=lambda ctx: business_rules.ids_not_null(ctx.table, ctx.feed),
    ),
    Rule(
        name="primary_key_unique",
        description="no two rows share the feed's primary key",
        applies=lambda feed: bool(feed.primary_key),
        columns=lambda feed: feed.primary_key,
        check=lambda ctx: business_rules.primary_key_unique(ctx.table, ctx.feed),
        faults=("duplicate_primary_key",),
    ),
    Rule(
        name="single_currency",
        description="one currency per partition, and it is the customer's configured currency when known",
        option=one_column("currency_column", types=("string",)),
        check=lambda ctx: business_rules.single_currency(ctx.table, ctx.feed, ctx.customer),
        faults=("mixed_currency",),
    ),
)

DEFAULT = RuleRegistry(RULES)
_active: RuleRegistry = DEFAULT


def _hand_options_to_feed_rules(registry: RuleRegistry) -> None:
    """Tell ``FeedRules`` which settings exist and their defaults (feeds import no validation)."""
    FeedRules.use_options({key: option.default for key, option in registry.options.items()})


_hand_options_to_feed_rules(DEFAULT)


def active() -> RuleRegistry:
    """The registry in force (:data:`DEFAULT` unless :func:`activate` swapped one in)."""
    return _active


@contextmanager
def activate(registry: RuleRegistry) -> Iterator[RuleRegistry]:
    """Make ``registry`` the active one for the block (process-wide; for tests and experiments).

    Load the feed config inside the block if it uses the registry's extra config keys.
    """
    global _active
    previous, _active = _active, registry
    _hand_options_to_feed_rules(registry)
    try:
        yield registry
    finally:
        _active = previous
        _hand_options_to_feed_rules(previous)
