"""``gridcat facets promote|list|disable|backfill|backfill-status|compliance`` (the tag-facet contract).

Values the tag-facet contract constrains (mode, batch size, column name, ids) are checked by gridcat and
fail with a JSON ``INVALID_ARGUMENT`` error, not by argparse. ``backfill --wait`` runs the job
to its end in this process (no Dagster daemon needed) with a progress bar on stderr (plain
lines, at most one a second, when stderr is not a terminal).
"""

from __future__ import annotations

import argparse
from typing import Any

from gridcat_pipelines.cli.output import print_fields, print_json, print_table
from gridcat_pipelines.cli.progress import Progress
from gridcat_pipelines.cli.state_commands import open_store, parse_int
from gridcat_pipelines.config import Settings
from gridcat_pipelines.tag_facets.service import FacetService

FACET_COLUMNS = [
    "facet_id",
    "key_name",
    "column_name",
    "status",
    "promotion_started_at",
    "last_refresh_succeeded_at",
    "error",
]
COMPLIANCE_COLUMNS = ["key_name", "status", "rows_total", "rows_with_tag", "null_with_tag", "tag_absent", "drift"]


def _service(settings: Settings) -> FacetService:
    return FacetService(open_store(settings))


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``facets`` command group."""
    facets = commands.add_parser("facets", help="promote tag keys to indexed columns (tag facets)")
    sub = facets.add_subparsers(dest="facets_command", metavar="COMMAND", required=True)

    p = sub.add_parser("promote", help="promote a tag key to a projection column")
    p.add_argument("--key", required=True, help="tag key to promote")
    p.add_argument("--column", help="column name (default: the key, lowercased); ^[a-z][a-z0-9_]{0,30}$")
    p.add_argument("--no-index", action="store_true", help="do not build an index on the column")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_promote)

    ls = sub.add_parser("list", help="the facet status board")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(handler=cmd_list)

    d = sub.add_parser("disable", help="stop projecting a facet and refuse filters on it (column kept)")
    d.add_argument("--facet-id", required=True)
    d.add_argument("--reason", required=True)
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(handler=cmd_disable)

    b = sub.add_parser("backfill", help="queue (and with --wait run) a backfill job for a facet")
    b.add_argument("--facet-id", required=True)
    b.add_argument("--mode", default="FULL", help="FULL (default) or MISSING_ONLY")
    b.add_argument("--batch-size", help="rows per batch (default 10000, max 100000)")
    b.add_argument("--wait", action="store_true", help="run the job to its end here, progress on stderr")
    b.add_argument("--json", action="store_true", help="print JSON")
    b.set_defaults(handler=cmd_backfill)

    s = sub.add_parser("backfill-status", help="progress of a backfill job")
    s.add_argument("--job-id", required=True)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(handler=cmd_backfill_status)

    c = sub.add_parser("compliance", help="per facet: rows with the tag, not yet projected, drift")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(handler=cmd_compliance)


def _show(payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(payload)
    else:
        print_fields(payload)


def cmd_promote(args: argparse.Namespace, settings: Settings) -> int:
    """Promote a key; prints the facet and the initial backfill job id (if one was queued)."""
    _show(_service(settings).promote(args.key, args.column, not args.no_index), args.json)
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print every facet."""
    payload = _service(settings).list_facets()
    if args.json:
        print_json(payload)
    else:
        print_table(payload["facets"], FACET_COLUMNS)
    return 0


def cmd_disable(args: argparse.Namespace, settings: Settings) -> int:
    """Disable a facet."""
    _show(_service(settings).disable(args.facet_id, args.reason), args.json)
    return 0


class ProgressBar:
    """A backfill job's progress on stderr, updated after every batch: rows done of the total,
    the job's status and its ETA (a bar on a terminal, plain lines otherwise)."""

    def __init__(self, stream=None, *, plain: bool | None = None, min_interval: float = 1.0):
        self.stream, self.plain, self.min_interval = stream, plain, min_interval
        self.progress: Progress | None = None

    def __call__(self, job: dict[str, Any]) -> None:
        total = job.get("rows_total") or 0
        done = job.get("rows_processed") or 0
        status = job["status"]
        finished = status in ("SUCCEEDED", "FAILED")
        eta = job.get("eta_seconds")
        tail = f" eta {eta:.1f}s" if isinstance(eta, (int, float)) and status == "RUNNING" else ""
        if self.progress is None:
            self.progress = Progress(
                total, "backfill", unit="row", stream=self.stream, plain=self.plain, min_interval=self.min_interval
            )
        if status == "SUCCEEDED":
            done = max(done, total)
        self.progress.update_to(
            done, total=total, line=f"backfill: {done}/{total} rows {status}{tail}", postfix=f"{status}{tail}"
        )
        if finished:
            self.progress.close()
            self.progress = None


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    """Queue a backfill; with ``--wait`` run it here and print the finished job."""
    service = _service(settings)
    queued = service.trigger_backfill(args.facet_id, parse_int(args.batch_size, "batch size"), args.mode)
    if not args.wait:
        _show(queued, args.json)
        return 0
    job = service.run_backfill(queued["job_id"], progress=ProgressBar())
    _show(job, args.json)
    return 0 if job["status"] == "SUCCEEDED" else 1


def cmd_backfill_status(args: argparse.Namespace, settings: Settings) -> int:
    """Print a job's progress."""
    _show(_service(settings).backfill_status(args.job_id), args.json)
    return 0


def cmd_compliance(args: argparse.Namespace, settings: Settings) -> int:
    """Print per-facet coverage and drift."""
    payload = _service(settings).compliance()
    if args.json:
        print_json(
            {
                "facets": [
                    {
                        k: f[k]
                        for k in (
                            "facet_id",
                            "key_name",
                            "rows_total",
                            "rows_with_tag",
                            "null_with_tag",
                            "tag_absent",
                            "drift",
                        )
                    }
                    for f in payload["facets"]
                ]
            }
        )
    else:
        print_table(payload["facets"], COMPLIANCE_COLUMNS)
    return 0
