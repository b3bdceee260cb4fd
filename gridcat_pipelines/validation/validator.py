"""Validate one raw run: every applicable rule, vectorised, into one :class:`ValidationReport`.

The rules, their order and their checks are the entries of the rule registry
(:mod:`gridcat_pipelines.validation.registry`); this module only runs them.

:func:`validate_table` is pure (an Arrow table plus its metadata in, a report out);
:func:`validate_run` reads a run through the raw sink first. A bad run never raises: an
incomplete run (no ``metadata.json``), a missing run or unreadable data files give a failed
report whose ``metadata_consistency`` rule says why, with every other rule skipped. Only bad
arguments raise (``INVALID_ARGUMENT``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from typing import Any, Protocol

import pyarrow as pa

from gridcat_pipelines.errors import (
    FAILED_PRECONDITION,
    NOT_FOUND,
    GridcatError,
    invalid_argument,
)
from gridcat_pipelines.feeds.models import CustomerConfig, FeedConfig
from gridcat_pipelines.run_ids import parse_run_id
from gridcat_pipelines.state.keys import PartitionKey, parse_date
from gridcat_pipelines.validation.json_schema import CompiledRowSchema, row_schema_for
from gridcat_pipelines.validation.registry import (
    METADATA_CONSISTENCY,
    Rule,
    RuleContext,
    active,
)
from gridcat_pipelines.validation.report import RuleResult, ValidationReport
from gridcat_pipelines.validation.structural_checks import unreadable_run


class RawRunReader(Protocol):
    """What :func:`validate_run` needs from the raw sink (``gridcat_pipelines.raw_sink.RawSink``)."""

    def read_metadata(self, key: PartitionKey, run_id: str) -> Any:
        """The run's metadata; ``FAILED_PRECONDITION`` if incomplete, ``NOT_FOUND`` if missing."""
        ...

    def read_table(self, metadata: Any) -> pa.Table:
        """The run's rows."""
        ...

    def verify_files(self, metadata: Any) -> list[str]:
        """Problems with the run's data files (missing, size or sha256 mismatch); empty if none."""
        ...


def validate_table(
    table: pa.Table,
    metadata: Any,
    feed: FeedConfig,
    logical_date: date,
    *,
    customer: CustomerConfig | None = None,
    file_problems: Iterable[str] = (),
    key: PartitionKey | None = None,
    run_id: str | None = None,
    row_schema: CompiledRowSchema | None = None,
) -> ValidationReport:
    """Run every rule of ``feed`` on ``table`` (the rows of the run ``metadata`` describes).

    No I/O. ``key`` defaults to the metadata's ``key`` (else it is built from the customer,
    the feed and ``logical_date``); ``run_id`` (the run asked for) defaults to the
    metadata's. ``file_problems`` are the raw sink's findings on the data files.
    ``row_schema`` lets callers pass a schema compiled at config load time (default: the
    cached :func:`~gridcat_pipelines.validation.json_schema.row_schema_for`). Rules whose
    columns are missing or mistyped are skipped, not failed. Raises ``INVALID_ARGUMENT``
    only for inconsistent arguments (or a row schema that does not compile).
    """
    started = time.perf_counter()
    logical_date = parse_date(logical_date)
    key = _resolve_key(key, metadata, feed, logical_date, customer)
    run_id = parse_run_id(run_id if run_id is not None else getattr(metadata, "run_id", None))
    compiled = row_schema if row_schema is not None else row_schema_for(feed)
    if compiled.feed_name != feed.name:
        raise invalid_argument(f"row schema compiled for feed {compiled.feed_name!r}, not {feed.name!r}")

    ctx = RuleContext(
        table,
        feed,
        logical_date,
        metadata=metadata,
        customer=customer,
        key=key,
        run_id=run_id,
        file_problems=file_problems,
        row_schema=compiled,
    )
    results = tuple(_evaluate(rule, ctx) for rule in active().for_feed(feed))
    return ValidationReport(
        key=key,
        run_id=run_id,
        schema_version=_text_or_none(getattr(metadata, "schema_version", None)),
        record_count=table.num_rows,
        rules=results,
        duration_s=time.perf_counter() - started,
    )


def validate_run(
    sink: RawRunReader,
    key: PartitionKey,
    run_id: str,
    feed: FeedConfig,
    customer: CustomerConfig | None = None,
    *,
    row_schema: CompiledRowSchema | None = None,
) -> ValidationReport:
    """Read run ``run_id`` of partition ``key`` through ``sink`` and validate it.

    Never raises for a bad run: an incomplete run (no ``metadata.json``), a missing run, or
    data files that cannot be read give a failed report (``metadata_consistency`` fails with
    the sink's message, every other rule is skipped). Raises ``INVALID_ARGUMENT`` for bad
    arguments (a key of another feed or customer, a malformed run id, a row schema that does
    not compile).
    """
    started = time.perf_counter()
    if not isinstance(key, PartitionKey):
        raise invalid_argument("key must be a PartitionKey")
    if key.query_name != feed.name:
        raise invalid_argument(f"partition {key} is not of feed {feed.name!r}")
    if customer is not None and customer.customer_id != key.customer_id:
        raise invalid_argument(f"partition {key} is not of customer {customer.customer_id}")
    run_id = parse_run_id(run_id)
    compiled = row_schema if row_schema is not None else row_schema_for(feed)

    try:
        metadata = sink.read_metadata(key, run_id)
    except GridcatError as exc:
        if exc.code not in (FAILED_PRECONDITION, NOT_FOUND):
            raise
        return _unreadable_report(key, run_id, feed, [exc.message], None, started)
    problems = list(sink.verify_files(metadata))
    try:
        table = sink.read_table(metadata)
    except (GridcatError, pa.ArrowException, OSError) as exc:
        unreadable = [*problems, f"data files unreadable: {getattr(exc, 'message', None) or exc}"]
        return _unreadable_report(key, run_id, feed, unreadable, metadata, started)
    report = validate_table(
        table,
        metadata,
        feed,
        key.logical_date,
        customer=customer,
        file_problems=problems,
        key=key,
        run_id=run_id,
        row_schema=compiled,
    )
    return _with_duration(report, time.perf_counter() - started)


def _evaluate(rule: Rule, ctx: RuleContext) -> RuleResult:
    """Run ``rule``'s check, or skip it if a column it reads is missing or mistyped."""
    bad = [c for c in rule.columns_of(ctx.feed) if c not in ctx.usable]
    if bad:
        return RuleResult.skip(rule.name, f"column(s) missing or mistyped: {', '.join(bad)}")
    return RuleResult.of(rule.name, rule.check(ctx))


def _unreadable_report(
    key: PartitionKey, run_id: str, feed: FeedConfig, problems: list[str], metadata: Any, started: float
) -> ValidationReport:
    """A failed report for a run whose data could not be read: only metadata_consistency ran."""
    rules = tuple(
        RuleResult.of(rule.name, unreadable_run(problems))
        if rule.name == METADATA_CONSISTENCY
        else RuleResult.skip(rule.name, "run not readable; see metadata_consistency")
        for rule in active().for_feed(feed)
    )
    count = getattr(metadata, "record_count", None)
    return ValidationReport(
        key=key,
        run_id=run_id,
        schema_version=_text_or_none(getattr(metadata, "schema_version", None)),
        record_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        rules=rules,
        duration_s=time.perf_counter() - started,
    )


def _resolve_key(
    key: PartitionKey | None,
    metadata: Any,
    feed: FeedConfig,
    logical_date: date,
    customer: CustomerConfig | None,
) -> PartitionKey:
    if key is None:
        # The partition is (metadata's source and customer | the customer, feed, date); if the
        # metadata names another feed or date, metadata_consistency reports it.
        base = getattr(metadata, "key", None)
        if isinstance(base, PartitionKey):
            key = PartitionKey(base.source, base.customer_id, feed.name, logical_date)
        elif customer is not None:
            key = PartitionKey.parse(customer.customer_id, feed.name, logical_date)
        else:
            raise invalid_argument("pass key= (or a customer, or metadata with a key) to name the partition")
    if not isinstance(key, PartitionKey):
        raise invalid_argument("key must be a PartitionKey")
    if key.query_name != feed.name:
        raise invalid_argument(f"partition {key} is not of feed {feed.name!r}")
    if key.logical_date != logical_date:
        raise invalid_argument(f"partition {key} is not of logical date {logical_date.isoformat()}")
    if customer is not None and customer.customer_id != key.customer_id:
        raise invalid_argument(f"partition {key} is not of customer {customer.customer_id}")
    return key


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _with_duration(report: ValidationReport, duration_s: float) -> ValidationReport:
    return replace(report, duration_s=duration_s)
