"""Raw-run retention: delete superseded runs older than an age, never an authoritative or a
pinned one.

A run is *superseded* when its partition has a state whose ``current_run_id`` is newer than
it (run ids sort by creation time); runs of partitions without a state, and runs newer than
the authoritative one (pulled but not yet validated, or left newer by an operator re-point),
are never touched. Age is the creation time in the run id, compared with now - ``older_than``.
Just before each deletion the state and the live leases are read again, so a run that became
authoritative or was pinned meanwhile is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.leases.store import LeaseStore
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.run_ids import run_id_created_at
from gridcat_pipelines.state import StateStore
from gridcat_pipelines.timestamps import iso_utc

BATCH = 500


@dataclass
class RetentionReport:
    """What retention deleted (or would delete) and what it kept, and why."""

    dry_run: bool
    runs: list[dict[str, Any]] = field(default_factory=list)
    kept_pinned: int = 0
    kept_authoritative: int = 0
    kept_recent: int = 0
    kept_not_superseded: int = 0

    def to_json(self) -> dict[str, Any]:
        """``{"deleted"|"would_delete": [...], "kept_pinned", "kept_authoritative", ...}``."""
        return {
            ("would_delete" if self.dry_run else "deleted"): self.runs,
            "kept_pinned": self.kept_pinned,
            "kept_authoritative": self.kept_authoritative,
            "kept_recent": self.kept_recent,
            "kept_not_superseded": self.kept_not_superseded,
        }


def apply_retention(
    store: StateStore,
    sink: RawSink,
    leases: LeaseStore,
    *,
    older_than_days: float,
    dry_run: bool = False,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> RetentionReport:
    """Delete (or with ``dry_run`` list) superseded, unpinned raw runs older than ``older_than_days``."""
    if isinstance(older_than_days, bool) or not isinstance(older_than_days, (int, float)) or older_than_days < 0:
        raise invalid_argument(f"older-than {older_than_days!r} must be a number of days >= 0")
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=older_than_days)
    report = RetentionReport(dry_run=dry_run)
    runs = list(sink.iter_all_runs(include_incomplete=True))
    for start in range(0, len(runs), BATCH):
        batch = runs[start:start + BATCH]
        states = store.get_many({r.key for r in batch})
        pinned = leases.pinned_runs()
        for run in batch:
            state = states[run.key]
            if run.run_id == state.current_run_id:
                report.kept_authoritative += 1
            elif not state.current_run_id or run.run_id > state.current_run_id:
                report.kept_not_superseded += 1
            elif (run.key, run.run_id) in pinned:
                report.kept_pinned += 1
            elif run_id_created_at(run.run_id) >= cutoff:
                report.kept_recent += 1
            else:
                if not dry_run:
                    # re-check right before deleting: authoritative or pinned meanwhile -> keep
                    if store.get(run.key).current_run_id == run.run_id:
                        report.kept_authoritative += 1
                        continue
                    if (run.key, run.run_id) in leases.pinned_runs():
                        report.kept_pinned += 1
                        continue
                    sink.delete_run(run.key, run.run_id)
                report.runs.append({
                    "run_id": run.run_id,
                    "path": run.uri,
                    **run.key.to_json(),
                    "created_at": iso_utc(run_id_created_at(run.run_id)),
                    "complete": run.complete,
                })
        if progress:
            progress(min(start + BATCH, len(runs)))
    return report
