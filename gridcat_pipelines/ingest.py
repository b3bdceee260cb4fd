"""One partition through the pipeline, without Dagster: pull into a raw run, then validate
that run and record the verdict in the state store.

The Dagster assets and the CLI call these two functions; extraction never writes state
(only :func:`validate_and_record` does, through the store's single write path).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from gridcat_pipelines.feeds.models import CustomerConfig, FeedConfig
from gridcat_pipelines.raw_sink.sink import RawSink, RunMetadata
from gridcat_pipelines.sources.base import AdsSource
from gridcat_pipelines.state import PartitionKey, RecordOutcome, StateStore
from gridcat_pipelines.state.keys import DEFAULT_SOURCE
from gridcat_pipelines.validation.report import ValidationReport
from gridcat_pipelines.validation.validator import validate_run


def partition_key(feed: FeedConfig, customer: CustomerConfig, day: date) -> PartitionKey:
    """The state key of one feed x customer x day."""
    return PartitionKey(DEFAULT_SOURCE, customer.customer_id, feed.name, day)


def prior_pulls(sink: RawSink, key: PartitionKey) -> int:
    """How many pulls of ``key`` came before (complete or not): 0 means this is the first."""
    return len(sink.list_runs(key, include_incomplete=True))


def pull_raw_run(
    source: AdsSource,
    sink: RawSink,
    feed: FeedConfig,
    customer: CustomerConfig,
    day: date,
    *,
    retry_number: int = 0,
) -> RunMetadata:
    """Pull one report into a new immutable raw run and return its committed metadata.

    Source errors propagate; a failure mid-stream leaves an incomplete run (no metadata.json)
    that never validates. ``retry_number`` counts retries of this same pull.
    """
    key = partition_key(feed, customer, day)
    attempt = prior_pulls(sink, key) + retry_number
    batches = source.fetch(feed, customer, day, attempt=attempt)
    return sink.write_run(
        key,
        batches,
        schema_version=feed.schema_version,
        gaql=feed.query_for(day),
        source_name=source.name,
        schema=feed.arrow_schema(),
    )


@dataclass(frozen=True)
class ValidatedRun:
    """A validation report and what recording it did to the partition state."""

    report: ValidationReport
    outcome: RecordOutcome


def validate_and_record(
    store: StateStore,
    sink: RawSink,
    feed: FeedConfig,
    customer: CustomerConfig,
    key: PartitionKey,
    run_id: str,
) -> ValidatedRun:
    """Validate one raw run and offer the verdict to the state store (tags from the customer)."""
    report = validate_run(sink, key, run_id, feed, customer)
    outcome = store.record_result(report.to_validation_result(tags=dict(customer.tags)))
    return ValidatedRun(report=report, outcome=outcome)
