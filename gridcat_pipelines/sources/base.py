"""The interface every Ads source implements, and the errors it may raise.

A source streams one report (feed x customer x day) as Arrow record batches, so a raw sink
can write data files while the pull is in progress; a failure mid-stream leaves a run
without ``metadata.json`` (never a run that validates).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Protocol, runtime_checkable

import pyarrow as pa

from gridcat_pipelines.feeds.models import CustomerConfig, FeedConfig


class SourceError(Exception):
    """A pull that failed for good (bad request, permission, a crash mid-stream)."""


class TransientSourceError(SourceError):
    """A pull that failed for a reason worth retrying (quota, deadline, 5xx, connection reset)."""


class SourceCrash(SourceError):
    """The pull died mid-stream after some batches were handed out (simulated by the synthetic source)."""


@runtime_checkable
class AdsSource(Protocol):
    """Pulls one Google Ads report for one customer and one UTC day."""

    name: str  # e.g. "synthetic" or "google_ads_api"

    def fetch(
        self, feed: FeedConfig, customer: CustomerConfig, day: date, *, attempt: int = 0
    ) -> Iterator[pa.RecordBatch]:
        """Stream the report's rows as record batches with the feed's Arrow schema.

        ``attempt`` is how many pulls of this partition came before this one (0 = first);
        sources may use it (the synthetic source injects its faults on the first pull only).
        Raises :class:`TransientSourceError` for retryable failures, :class:`SourceError`
        otherwise.
        """
        ...
