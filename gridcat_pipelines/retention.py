"""Raw-run retention: delete superseded runs older than an age, never an authoritative or a
pinned one.

A run is *superseded* when its partition has a state whose ``current_run_id`` is newer than
it (run ids sort by creation time); runs of partitions without a state, and runs newer than
the authoritative one (pulled but not yet validated, or left newer by an operator re-point),
are never touched. Age is the creation time in the run id, compared with now - ``older_than``.

Deletion is fenced like a warehouse commit: for each batch, the candidates' partitions are
held still (``StateStore.hold``: no re-point, result or lease of them commits meanwhile), the
state and the live leases are read again under that hold, and a tombstone is recorded for
each run still deletable (``raw_run_tombstone``) in the same transaction. Only after it commits
are the files deleted. A re-point to a tombstoned run (or one older than it) is refused, so no
interleaving deletes the authoritative run or makes a deleted run authoritative; a retention
killed between the tombstone and the files leaves the files, and the next run deletes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gridcat_pipelines.errors import NOT_FOUND, GridcatError, invalid_argument
from gridcat_pipelines.leases.store import LeaseStore
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.run_ids import run_id_created_at
from gridcat_pipelines.state import StateStore
from gridcat_pipelines.state.db import dialect_insert
from gridcat_pipelines.state.tables import KEY_COLUMNS, raw_run_tombstone
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
    cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
    report = RetentionReport(dry_run=dry_run)
    runs = list(sink.iter_all_runs(include_incomplete=True))
    for start in range(0, len(runs), BATCH):
        batch = runs[start : start + BATCH]
        candidates = _candidates(report, batch, store.get_many({r.key for r in batch}), leases.pinned_runs(), cutoff)
        if dry_run:
            report.runs.extend(_describe(run) for run in candidates)
        elif candidates:
            for run in _tombstone(report, store, leases, candidates, now or datetime.now(UTC)):
                try:
                    sink.delete_run(run.key, run.run_id)
                except GridcatError as exc:
                    if exc.code != NOT_FOUND:  # gone already: another retention run deleted it
                        raise
                report.runs.append(_describe(run))
        if progress:
            progress(min(start + BATCH, len(runs)))
    return report


def _classify(run, state, pinned: set, cutoff: datetime | None) -> str | None:
    """Why ``run`` is kept (a report counter's name), or ``None`` when it may be deleted
    (``cutoff`` None: its age was checked already)."""
    if run.run_id == state.current_run_id:
        return "kept_authoritative"
    if not state.current_run_id or run.run_id > state.current_run_id:
        return "kept_not_superseded"
    if (run.key, run.run_id) in pinned:
        return "kept_pinned"
    if cutoff is not None and run_id_created_at(run.run_id) >= cutoff:
        return "kept_recent"
    return None


def _candidates(report: RetentionReport, batch: list, states: dict, pinned: set, cutoff: datetime) -> list:
    """The runs of ``batch`` that look deletable (counting the others in ``report``)."""
    chosen = []
    for run in batch:
        reason = _classify(run, states[run.key], pinned, cutoff)
        if reason is None:
            chosen.append(run)
        else:
            setattr(report, reason, getattr(report, reason) + 1)
    return chosen


def _tombstone(report: RetentionReport, store: StateStore, leases: LeaseStore, candidates: list, now: datetime) -> list:
    """Re-check ``candidates`` with their partitions held still and tombstone the runs still
    deletable, in one transaction; the runs to delete (after it committed)."""
    deletable = []
    with store.hold({run.key for run in candidates}) as held:
        pinned = leases.pinned_runs(held.conn)
        for run in candidates:
            reason = _classify(run, held.states[run.key], pinned, None)
            if reason is not None:
                setattr(report, reason, getattr(report, reason) + 1)
                continue
            deletable.append(run)
        if deletable:
            stmt = dialect_insert(store.dialect, raw_run_tombstone).on_conflict_do_nothing()
            held.conn.execute(
                stmt,
                [
                    {
                        **dict(zip(KEY_COLUMNS, run.key.as_tuple())),
                        "run_id": run.run_id,
                        "path": run.uri,
                        "deleted_at": now,
                    }
                    for run in deletable
                ],
            )
    return deletable


def _describe(run) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "path": run.uri,
        **run.key.to_json(),
        "created_at": iso_utc(run_id_created_at(run.run_id)),
        "complete": run.complete,
    }
