"""``gridcat pull`` (re-pull one partition through Dagster) and ``gridcat warehouse status``."""

from __future__ import annotations

import argparse

from gridcat_pipelines.cli.output import print_json, print_table
from gridcat_pipelines.cli.state_commands import open_store
from gridcat_pipelines.config import Settings
from gridcat_pipelines.errors import not_found
from gridcat_pipelines.state import PartitionKey, StateFilter
from gridcat_pipelines.state.store import MAX_PAGE_SIZE


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``pull`` and the ``warehouse`` group."""
    pull = commands.add_parser(
        "pull",
        help="re-extract and re-validate one partition through Dagster (a new raw run)",
        description="Run the ingest job for one feed x customer x day in this process (no daemon "
        "needed; the run lands in the Dagster instance) and print the state after validation. "
        "The gate sensor does the warehouse load.",
    )
    pull.add_argument("--customer", required=True, help="customer id")
    pull.add_argument("--query", required=True, help="feed (query) name")
    pull.add_argument("--date", required=True, help="logical date, YYYY-MM-DD")
    pull.add_argument("--json", action="store_true", help="print JSON")
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


def cmd_pull(args: argparse.Namespace, settings: Settings) -> int:
    """Pull one partition and print ``{"run_id", "outcome", "state"}``."""
    from gridcat_pipelines.defs.ingestion.resources import cached_pipeline_config
    from gridcat_pipelines.defs.instance import ensure_instance
    from gridcat_pipelines.defs.local_runs import pull_one
    from gridcat_pipelines.definitions import build_defs

    key = PartitionKey.parse(args.customer, args.query, args.date)
    config = cached_pipeline_config(settings.feeds_path, settings.customers_path)
    if key.query_name not in config.feeds:
        raise not_found(f"no feed {key.query_name!r} in {settings.feeds_path}")
    if key.customer_id not in config.customers:
        raise not_found(f"customer {key.customer_id} is not in {settings.customers_path}")
    store = open_store(settings)
    instance = ensure_instance(settings)
    pulled = pull_one(build_defs(settings), instance, key.customer_id, key.query_name, key.logical_date)
    payload = {"run_id": pulled.run_id, "outcome": pulled.outcome, "state": store.get(key).to_json()}
    if args.json:
        print_json(payload)
    else:
        state = payload["state"]
        print(f"pulled {key}: run {pulled.run_id} ({pulled.outcome}); state {state['status']} "
              f"at {state['current_run_id']} (version {state['version']})")
        if state["error_message"]:
            print(f"  {state['error_message']}")
    return 0


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
    report = warehouse_status(states, open_warehouse(settings))
    if args.json:
        print_json(report)
    else:
        print_table(report["partitions"], ["customer_id", "query_name", "logical_date", "status", "sync", "authoritative_run_id", "loaded_run_id", "loaded_rows"])
        print("summary: " + ", ".join(f"{k}={v}" for k, v in report["summary"].items()))
    return 0
