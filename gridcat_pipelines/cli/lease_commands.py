"""``gridcat leases begin|renew|end|list`` and ``gridcat retention``."""

from __future__ import annotations

import argparse

from gridcat_pipelines.cli.output import print_json, print_table
from gridcat_pipelines.cli.progress import Progress
from gridcat_pipelines.cli.state_commands import open_store
from gridcat_pipelines.config import Settings
from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.leases.store import DEFAULT_TTL_SECONDS, LeaseStore
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.retention import apply_retention
from gridcat_pipelines.state import PartitionKey
from gridcat_pipelines.warehouse.maintenance import ORPHAN_DAYS, SNAPSHOT_DAYS, check_ages


def _number(value: str | None, field: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise invalid_argument(f"{field} {value!r} is not a number") from None


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``leases`` group and ``retention``."""
    leases = commands.add_parser("leases", help="pin authoritative runs while they are read")
    sub = leases.add_subparsers(dest="leases_command", metavar="COMMAND", required=True)
    begin = sub.add_parser("begin", help="pin the authoritative run of a partition")
    begin.add_argument("--customer", required=True, help="customer id")
    begin.add_argument("--query", required=True, help="feed (query) name")
    begin.add_argument("--date", required=True, help="logical date, YYYY-MM-DD")
    begin.add_argument("--ttl", help=f"seconds until it expires (default {DEFAULT_TTL_SECONDS})")
    begin.add_argument("--json", action="store_true", help="print JSON")
    begin.set_defaults(handler=cmd_begin)
    renew = sub.add_parser("renew", help="extend a live lease (never shortens it)")
    renew.add_argument("--lease-id", required=True)
    renew.add_argument("--ttl", help=f"seconds from now (default {DEFAULT_TTL_SECONDS})")
    renew.add_argument("--json", action="store_true", help="print JSON")
    renew.set_defaults(handler=cmd_renew)
    end = sub.add_parser("end", help="end a lease (commit, or --abort) and release its pins")
    end.add_argument("--lease-id", required=True)
    end.add_argument("--abort", action="store_true", help="end as aborted")
    end.add_argument("--json", action="store_true", help="print JSON")
    end.set_defaults(handler=cmd_end)
    lst = sub.add_parser("list", help="live leases")
    lst.add_argument("--all", action="store_true", help="include ended and expired leases")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(handler=cmd_list)

    ret = commands.add_parser(
        "retention",
        help="delete superseded raw runs older than DAYS (never authoritative or pinned)",
        description="Delete raw runs that a newer authoritative run superseded, created more than "
        "DAYS ago (fractions allowed; 0 selects every superseded run), that no live lease pins.",
    )
    ret.add_argument("--older-than", required=True, metavar="DAYS", help="age in days")
    ret.add_argument(
        "--warehouse-snapshots-older-than",
        metavar="DAYS",
        help=f"Iceberg warehouse (GRIDCAT_WAREHOUSE=iceberg): also expire table snapshots older than DAYS "
        f"(default {SNAPSHOT_DAYS}); the current snapshot of each table always stays",
    )
    ret.add_argument(
        "--warehouse-orphans-older-than",
        metavar="DAYS",
        help=f"Iceberg warehouse: then delete the table files no kept snapshot references (those of expired "
        f"snapshots, of lost or killed loads) last modified more than DAYS ago (default {ORPHAN_DAYS}, "
        "at least 1 hour)",
    )
    ret.add_argument("--dry-run", action="store_true", help="list what would be deleted")
    ret.add_argument("--json", action="store_true", help="print JSON")
    ret.set_defaults(handler=cmd_retention)


def _print(lease, as_json: bool) -> None:
    if as_json:
        print_json(lease.to_json())
    else:
        data = lease.to_json()
        print(f"lease {data['lease_id']} {data['status']} until {data['expires_at']}")
        for pin in data["pins"]:
            print(f"  {pin['customer_id']} {pin['query_name']} {pin['logical_date']}: {pin['run_id']}")


def cmd_begin(args: argparse.Namespace, settings: Settings) -> int:
    """Begin a lease on one partition."""
    key = PartitionKey.parse(args.customer, args.query, args.date)
    ttl = _number(args.ttl, "ttl") or DEFAULT_TTL_SECONDS
    _print(LeaseStore(open_store(settings)).begin([key], ttl_seconds=ttl, holder="cli"), args.json)
    return 0


def cmd_renew(args: argparse.Namespace, settings: Settings) -> int:
    """Renew a lease."""
    ttl = _number(args.ttl, "ttl") or DEFAULT_TTL_SECONDS
    _print(LeaseStore(open_store(settings)).renew(args.lease_id, ttl_seconds=ttl), args.json)
    return 0


def cmd_end(args: argparse.Namespace, settings: Settings) -> int:
    """End a lease."""
    _print(LeaseStore(open_store(settings)).end(args.lease_id, abort=args.abort), args.json)
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    """List leases."""
    leases = LeaseStore(open_store(settings)).list(include_ended=args.all)
    if args.json:
        print_json({"leases": [l.to_json() for l in leases]})
    else:
        print_table([l.to_json() for l in leases], ["lease_id", "status", "expires_at", "run_ids"])
    return 0


def cmd_retention(args: argparse.Namespace, settings: Settings) -> int:
    """Apply retention to the raw sink, then (Iceberg) to the warehouse. Every option is
    checked before anything is deleted."""
    days = _number(args.older_than, "older-than")
    ages = _warehouse_ages(args, settings)
    store = open_store(settings)
    with Progress(None, "retention: runs examined", unit="run") as progress:
        report = apply_retention(
            store,
            RawSink(str(settings.raw_root)),
            LeaseStore(store),
            older_than_days=days,
            dry_run=args.dry_run,
            progress=lambda n: progress.update_to(n, line=f"retention: {n} run(s) examined"),
        )
    warehouse = None
    if ages is not None:
        from gridcat_pipelines.warehouse.iceberg_target import IcebergWarehouse
        from gridcat_pipelines.warehouse.maintenance import apply_warehouse_retention

        warehouse = apply_warehouse_retention(
            IcebergWarehouse.open(settings.home), snapshot_days=ages[0], orphan_days=ages[1], dry_run=args.dry_run
        )
    if args.json:
        print_json({**report.to_json(), **(warehouse.to_json() if warehouse else {})})
    else:
        verb = "would delete" if args.dry_run else "deleted"
        print_table(report.runs, ["run_id", "customer_id", "query_name", "logical_date", "created_at", "path"])
        print(
            f"{verb} {len(report.runs)}; kept {report.kept_authoritative} authoritative, "
            f"{report.kept_pinned} pinned, {report.kept_recent} recent, "
            f"{report.kept_not_superseded} not superseded"
        )
        if warehouse:
            counts = ", ".join(f"{t} {n}" for t, n in warehouse.expired.items()) or "no table"
            print(f"warehouse snapshots older than {warehouse.snapshot_days} days: {verb} {counts}")
            files = ", ".join(f"{t} {r.files} ({r.bytes} bytes)" for t, r in warehouse.removed.items()) or "no table"
            print(f"warehouse files no snapshot references, older than {warehouse.orphan_days} days: {verb} {files}")
    return 0


def _warehouse_ages(args: argparse.Namespace, settings: Settings) -> tuple[float, float] | None:
    """The checked ``(snapshot, orphan)`` ages in days for the Iceberg warehouse; ``None`` for
    the other targets, which keep neither (the options are refused there)."""
    options = ("warehouse-snapshots-older-than", "warehouse-orphans-older-than")
    given = [getattr(args, option.replace("-", "_")) for option in options]
    if settings.warehouse_kind != "iceberg":
        for option, value in zip(options, given, strict=True):
            if value is not None:
                raise invalid_argument(f"--{option} needs GRIDCAT_WAREHOUSE=iceberg")
        return None
    snapshot_days, orphan_days = (
        default if value is None else _number(value, option)
        for option, value, default in zip(options, given, (SNAPSHOT_DAYS, ORPHAN_DAYS), strict=True)
    )
    check_ages(snapshot_days, orphan_days, tuple(f"--{option}" for option in options))
    return snapshot_days, orphan_days
