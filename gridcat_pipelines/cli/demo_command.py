"""``gridcat demo``: the main job end to end on the embedded default.

Until the Dagster ingestion pipeline lands this drives the state store directly: for each
customer x feed x day it offers a validator result for a first run (a share of them failed,
``--fault-rate``), re-pulls the failed partitions as new runs that pass, replays a late result
for an old run (recorded as superseded), and prints counts by status and the partitions whose
authoritative run moved.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta

from gridcat_pipelines.cli.output import print_json
from gridcat_pipelines.cli.state_commands import parse_int
from gridcat_pipelines.config import Settings
from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.run_ids import new_run_id
from gridcat_pipelines.state import PartitionKey, StateStore, ValidationResult

DEMO_FEEDS = ("campaign", "ad_group", "keyword_view")


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command."""
    demo = commands.add_parser("demo", help="run the main job end to end on the embedded default")
    demo.add_argument("--customers", default="3", help="number of synthetic customers (default 3)")
    demo.add_argument("--days", default="7", help="days back from yesterday (default 7)")
    demo.add_argument("--fault-rate", default="0.2", help="share of first pulls that fail (0 to 1)")
    demo.add_argument("--seed", default="7", help="random seed (default 7)")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Run the demo flow and print its summary."""
    customers = parse_int(args.customers, "customers")
    days = parse_int(args.days, "days")
    seed = parse_int(args.seed, "seed")
    try:
        fault_rate = float(args.fault_rate)
    except ValueError:
        raise invalid_argument(f"fault rate {args.fault_rate!r} is not a number") from None
    if not 1 <= customers <= 1000 or not 1 <= days <= 366 or not 0 <= fault_rate <= 1:
        raise invalid_argument("need 1 <= customers <= 1000, 1 <= days <= 366, 0 <= fault-rate <= 1")

    store = StateStore.open(settings.db_url, upgrade=True)
    rng = random.Random(seed)
    yesterday = date.today() - timedelta(days=1)
    keys = [
        PartitionKey.parse(str(1000000000 + c), feed, (yesterday - timedelta(days=d)).isoformat())
        for c in range(customers)
        for feed in DEMO_FEEDS
        for d in range(days)
    ]
    first_runs = {k: new_run_id() for k in keys}
    faulty = {k for k in keys if rng.random() < fault_rate}
    first = [
        ValidationResult(
            key=k,
            run_id=first_runs[k],
            status="failed" if k in faulty else "success",
            schema_version="1",
            record_count=rng.randint(0, 500),
            error_message="business_rule.cost_non_negative: 3 rows" if k in faulty else None,
            tags={"team": "ads", "env": "demo"},
        )
        for k in keys
    ]
    store.record_results(first)
    repulls = [
        ValidationResult(k, new_run_id(), "success", "1", rng.randint(0, 500))
        for k in keys if k in faulty
    ]
    store.record_results(repulls)
    # a late verdict on an old run (a slow validator retry): recorded, never applied
    late = [replace(r, status="success", error_message=None) for r in first if r.key in faulty][:1]
    late_outcomes = store.record_results(late)

    states = store.get_many(keys)
    by_status = Counter(s.status for s in states.values())
    moved = [s for k, s in states.items() if s.current_run_id != first_runs[k]]
    summary = {
        "partitions": len(keys),
        "by_status": dict(sorted(by_status.items())),
        "repulled": len(repulls),
        "authoritative_run_moved": len(moved),
        "late_results": [o.outcome for o in late_outcomes],
        "state_db": store.engine.url.render_as_string(hide_password=True),
    }
    if args.json:
        print_json(summary)
    else:
        print(f"gridcat demo: {len(keys)} partitions ({customers} customers x {len(DEMO_FEEDS)} feeds x {days} days)")
        print("  by status: " + ", ".join(f"{k}={v}" for k, v in summary["by_status"].items()))
        print(f"  re-pulled after a failed first run: {len(repulls)}")
        print(f"  authoritative run moved: {len(moved)}")
        for state in moved[:5]:
            print(f"    {state.key}: {first_runs[state.key]} -> {state.current_run_id}")
        print(f"  late results for old runs: {', '.join(summary['late_results']) or 'none'}")
        print(f"  state store: {summary['state_db']}")
    return 0
