"""``gridcat pull`` (re-pull one partition through Dagster), ``gridcat warehouse status`` and
``gridcat warehouse reconcile``."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC

from gridcat_pipelines.cli.output import print_json, print_table
from gridcat_pipelines.cli.state_commands import open_store
from gridcat_pipelines.config import Settings
from gridcat_pipelines.errors import not_found
from gridcat_pipelines.state import PartitionKey, StateFilter
from gridcat_pipelines.state.listing import MAX_PAGE_SIZE


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``pull`` and the ``warehouse`` group."""
    pull = commands.add_parser(
        "pull",
        help="re-extract and re-validate one partition through Dagster (a new raw run)",
        description="Run the ingest job for one feed x customer x day in this process (no daemon "
        "needed; the run lands in the Dagster instance) and print the state after validation. "
        "The gate sensor does the warehouse load. A failed step is one line on stderr (asset, "
        "partition, reason, Dagster run id); -v shows Dagster's error logging with the stack trace.",
    )
    pull.add_argument("--customer", required=True, help="customer id")
    pull.add_argument("--query", required=True, help="feed (query) name")
    pull.add_argument("--date", required=True, help="logical date, YYYY-MM-DD")
    pull.add_argument("--json", action="store_true", help="print JSON")
    pull.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="show Dagster's error logging with stack traces (-vv: its info lines too)",
    )
    pull.set_defaults(handler=cmd_pull)

    warehouse = commands.add_parser("warehouse", help="the warehouse against the state store")
    sub = warehouse.add_subparsers(dest="warehouse_command", metavar="COMMAND", required=True)
    status = sub.add_parser("status", help="per partition: in_sync, stale, held or missing")
    status.add_argument("--customer", help="customer id")
    status.add_argument("--query", help="feed (query) name")
    status.add_argument("--from", dest="from_date", help="first logical date, YYYY-MM-DD")
    status.add_argument("--to", dest="to_date", help="last logical date, YYYY-MM-DD")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=cmd_warehouse_status)
    reconcile = sub.add_parser(
        "reconcile",
        help="load every success partition whose slice is not its authoritative run",
        description="Find every success partition of the pipeline whose warehouse slice is not its "
        "authoritative run (a failed or lost load; reason load_failed or pending_load) and ask for "
        "its load: by default the daemon's warehouse_reconcile sensor launches the loads within a "
        "minute; --run loads them here, in this process; --dry-run only lists them.",
    )
    mode = reconcile.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="list the partitions, load nothing")
    mode.add_argument("--run", action="store_true", help="load them now, in this process")
    reconcile.add_argument("--json", action="store_true", help="print JSON")
    reconcile.set_defaults(handler=cmd_warehouse_reconcile)


def cmd_pull(args: argparse.Namespace, settings: Settings) -> int:
    """Pull one partition and print ``{"run_id", "outcome", "state"}``."""
    from gridcat_pipelines.cli.dagster_instance import ensure_instance
    from gridcat_pipelines.cli.local_runs import pull_one
    from gridcat_pipelines.config import cached_pipeline_config
    from gridcat_pipelines.definitions import build_defs

    key = PartitionKey.parse(args.customer, args.query, args.date)
    config = cached_pipeline_config(settings.feeds_path, settings.customers_path)
    if key.query_name not in config.feeds:
        raise not_found(f"no feed {key.query_name!r} in {settings.feeds_path}")
    if key.customer_id not in config.customers:
        raise not_found(f"customer {key.customer_id} is not in {settings.customers_path}")
    store = open_store(settings)
    instance = ensure_instance(settings)
    pulled = pull_one(
        build_defs(settings),
        instance,
        key.customer_id,
        key.query_name,
        key.logical_date,
        verbose=args.verbose,
        on_failure=lambda failure: _stderr(failure.line()),
    )
    payload = {"run_id": pulled.run_id, "outcome": pulled.outcome, "state": store.get(key).to_json()}
    if args.json:
        print_json(payload)
    else:
        state = payload["state"]
        print(
            f"pulled {key}: run {pulled.run_id} ({pulled.outcome}); state {state['status']} "
            f"at {state['current_run_id']} (version {state['version']})"
        )
        if state["error_message"]:
            print(f"  {state['error_message']}")
    return 0


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def cmd_warehouse_status(args: argparse.Namespace, settings: Settings) -> int:
    """Print the sync of every partition with a state row that matches the filters."""
    from gridcat_pipelines.warehouse import open_warehouse
    from gridcat_pipelines.warehouse.status import warehouse_status

    state_filter = StateFilter.parse(
        customer_id=args.customer, query_name=args.query, from_date=args.from_date, to_date=args.to_date
    )
    store = open_store(settings)
    states, token = [], None
    while True:
        page = store.list_states(state_filter, page_size=MAX_PAGE_SIZE, page_token=token)
        states.extend(page.states)
        token = page.next_page_token
        if not token:
            break
    from gridcat_pipelines.warehouse.reconcile import reasons_for

    report = warehouse_status(states, open_warehouse(settings), lambda keys: reasons_for(store, keys))
    if args.json:
        print_json(report)
    else:
        print_table(
            report["partitions"],
            [
                "customer_id",
                "query_name",
                "logical_date",
                "status",
                "sync",
                "reason",
                "authoritative_run_id",
                "loaded_run_id",
                "loaded_rows",
            ],
        )
        print("summary: " + ", ".join(f"{k}={v}" for k, v in report["summary"].items()))
    return 0


def cmd_warehouse_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    """List, request (default) or run (``--run``) the loads of every stale success partition."""
    from datetime import datetime

    from gridcat_pipelines.config import cached_pipeline_config
    from gridcat_pipelines.defs.ingestion.partitions import last_partition_date
    from gridcat_pipelines.leases.store import LeaseStore
    from gridcat_pipelines.raw_sink.sink import RawSink
    from gridcat_pipelines.warehouse import load_log, open_warehouse
    from gridcat_pipelines.warehouse.loader import LOADED, load_partition
    from gridcat_pipelines.warehouse.reconcile import find_stale

    config = cached_pipeline_config(settings.feeds_path, settings.customers_path)
    store = open_store(settings)
    warehouse = open_warehouse(settings)
    now = datetime.now(UTC)
    stale = find_stale(
        store,
        feeds=config.feeds,
        customers=None,
        start_date=config.start_date,
        end_date=last_partition_date(now),
        now=now,
        warehouse=warehouse,
    )
    payload: dict = {"partitions": [p.to_json() for p in stale]}
    if args.dry_run:
        payload["would_load"] = len(stale)
    elif args.run:
        from gridcat_pipelines.cli.progress import Progress

        sink, leases, loaded, failed = RawSink(str(settings.raw_root)), LeaseStore(store), 0, 0
        with Progress(len(stale), "loaded", unit="partition") as progress:
            for done, partition in enumerate(stale, 1):
                try:
                    outcome = load_partition(
                        store,
                        sink,
                        warehouse,
                        partition.key,
                        partition.run_id,
                        version=partition.version,
                        leases=leases,
                    )
                except Exception as exc:  # noqa: BLE001 - logged in the load log; report and go on
                    failed += 1
                    progress.write(f"reconcile: {partition.key}: load failed: {getattr(exc, 'message', exc)}")
                    progress.advance(postfix=str(partition.key))
                    continue
                loaded += outcome.status == LOADED
                progress.advance(
                    line=None if args.json else f"[{done}/{len(stale)}] {outcome.message}", postfix=str(partition.key)
                )
        payload["loaded"] = loaded
        payload["failed"] = failed
    else:
        load_log.record_requested(store.engine, [p.key for p in stale], now, due_now=True)
        payload["requested"] = len(stale)
    if args.json:
        print_json(payload)
    else:
        print_table(
            payload["partitions"],
            ["customer_id", "query_name", "logical_date", "reason", "authoritative_run_id", "error"],
        )
        verb = next(k for k in ("would_load", "loaded", "requested") if k in payload)
        print(f"{verb}: {payload[verb]}" + (f", failed: {payload['failed']}" if "failed" in payload else ""))
    return 1 if payload.get("failed") else 0
