"""Many partitions through the pipeline in one process, with requests in flight at once.

A Dagster run covers many customer-days (see :mod:`gridcat_pipelines.customer_groups`); this
is its work, without Dagster. Each task (a feed x customer x day) is pulled into a new raw run,
validated and recorded by a worker thread, so while some requests wait on the API others are
written and validated. At most ``max_in_flight`` tasks run at once: the cap on concurrent API
requests a run keeps per developer token (the Google Ads API rate-limits per token and per
account; across runs, the run queue's tag concurrency limit caps how many runs pull at once).

A failure belongs to its task alone: a transient source error (quota, deadline, a stream cut
mid-way) is retried with a new raw run after an exponential backoff, up to ``max_retries``
times, like the single-partition retry policy it replaces; any other error is recorded and the
other tasks go on. Nothing is retried twice over: the Google Ads adapter retries the opening
of a stream itself and raises a plain :class:`SourceError` once it gave up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date

from gridcat_pipelines.feeds.models import CustomerConfig, FeedConfig
from gridcat_pipelines.ingest import ValidatedRun, partition_key, pull_raw_run, validate_and_record
from gridcat_pipelines.raw_sink.sink import RawSink, RunMetadata
from gridcat_pipelines.sources.base import AdsSource, TransientSourceError
from gridcat_pipelines.state import PartitionKey, StateStore

DEFAULT_MAX_IN_FLIGHT = 8
DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_SECONDS = 0.5


@dataclass(frozen=True)
class PullTask:
    """One feed x customer x day to pull and validate."""

    feed: FeedConfig
    customer: CustomerConfig
    day: date

    @property
    def key(self) -> PartitionKey:
        """The partition state key of this task."""
        return partition_key(self.feed, self.customer, self.day)


@dataclass(frozen=True)
class PullResult:
    """What became of one task: the raw run and its validation, or the error that stopped it."""

    task: PullTask
    meta: RunMetadata | None = None
    validated: ValidatedRun | None = None
    error: str | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        """Pulled and recorded (the run may still have failed validation)."""
        return self.validated is not None

    @property
    def verdict(self) -> str:
        """``passed``, ``failed`` (validation) or ``error`` (no run was validated)."""
        if self.validated is None:
            return "error"
        return "passed" if self.validated.report.passed else "failed"


def ingest_many(
    source: AdsSource,
    sink: RawSink,
    store: StateStore,
    tasks: Iterable[PullTask],
    *,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    max_retries: int = DEFAULT_MAX_RETRIES,
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
    on_result: Callable[[PullResult], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[PullResult]:
    """Pull, validate and record every task, ``max_in_flight`` at a time; one result per task,
    in the order of ``tasks``. ``on_result`` sees each result as it completes (progress)."""
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
    tasks = list(tasks)
    results: list[PullResult | None] = [None] * len(tasks)

    def work(task: PullTask) -> PullResult:
        return _pull_one(source, sink, store, task, max_retries, backoff_seconds, sleep)

    with ThreadPoolExecutor(max_workers=min(max_in_flight, max(1, len(tasks))), thread_name_prefix="pull") as pool:
        futures = {pool.submit(work, task): i for i, task in enumerate(tasks)}
        for future in as_completed(futures):
            result = future.result()  # _pull_one never raises
            results[futures[future]] = result
            if on_result is not None:
                on_result(result)
    return [r for r in results if r is not None]


def _pull_one(
    source: AdsSource,
    sink: RawSink,
    store: StateStore,
    task: PullTask,
    max_retries: int,
    backoff_seconds: float,
    sleep: Callable[[float], None],
) -> PullResult:
    """One task with its retries; every error ends up in the result, never raised."""
    attempt = 0
    while True:
        try:
            meta = pull_raw_run(source, sink, task.feed, task.customer, task.day, retry_number=attempt)
        except TransientSourceError as exc:
            if attempt < max_retries:
                sleep(backoff_seconds * (2**attempt))
                attempt += 1
                continue
            return PullResult(task, error=f"{_describe(exc)} (after {attempt + 1} attempts)", attempts=attempt + 1)
        except Exception as exc:  # noqa: BLE001 - a bad pull of one customer never stops the others
            return PullResult(task, error=_describe(exc), attempts=attempt + 1)
        break
    try:
        validated = validate_and_record(store, sink, task.feed, task.customer, task.key, meta.run_id)
    except Exception as exc:  # noqa: BLE001 - e.g. the state store refused the result
        return PullResult(task, meta=meta, error=f"recording run {meta.run_id}: {_describe(exc)}", attempts=attempt + 1)
    return PullResult(task, meta=meta, validated=validated, attempts=attempt + 1)


def _describe(exc: BaseException) -> str:
    """``ClassName: message`` on one line."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
