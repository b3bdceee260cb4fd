"""``gridcat demo``: the main job end to end on the embedded default, through Dagster.

It creates the local Dagster instance under ``GRIDCAT_HOME`` (unless ``DAGSTER_HOME`` is set),
syncs the customer partitions, materializes every feed for N customers x D days (one run per
customer x day, a share ``--fault-rate`` of first pulls with an injected fault), re-pulls the
partitions that failed or crashed, runs the gate (the change-feed sensor, evaluated as the
daemon would) and the warehouse loads it requests, re-pulls one good partition so its
authoritative run moves and it reloads, and prints counts by status, the partitions whose
authoritative run moved and the warehouse's sync (in_sync, stale, held, missing). ``dagster dev`` on the same home then shows the runs,
materializations and per-partition check results.

Progress goes to stderr (a bar on a terminal, one line per run otherwise), with one line per
failed step: the asset, the partition, the reason (the injected fault) and the Dagster run
that holds the full stack trace. ``-v`` shows Dagster's own error logging, traces included.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import date, timedelta

from gridcat_pipelines.cli.output import print_json, quiet_dagster_warnings
from gridcat_pipelines.cli.progress import Progress
from gridcat_pipelines.cli.state_commands import parse_int
from gridcat_pipelines.config import Settings
from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.ingest import partition_key as state_key
from gridcat_pipelines.state import StateStore


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command."""
    demo = commands.add_parser(
        "demo",
        help="run the main job end to end on the embedded default (SQLite, local Dagster, synthetic source)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--customers", default="3", help="customers from config/customers.yaml (default 3)")
    demo.add_argument("--days", default="7", help="days ending yesterday (default 7)")
    demo.add_argument(
        "--fault-rate", default="0.2", help="share of first pulls with an injected fault, 0 to 1 (default 0.2)"
    )
    demo.add_argument("--seed", default="7", help="seed of the synthetic source (default 7)")
    demo.add_argument("--workers", default=str(min(2, os.cpu_count() or 1)), help="runs in parallel (default: up to 2)")
    demo.add_argument(
        "--warehouse",
        default=None,
        help="the warehouse target: parquet (default), postgres (needs GRIDCAT_WAREHOUSE_URL) or iceberg "
        "(tables in a SQLite catalog under GRIDCAT_HOME/iceberg, or pyiceberg's configured 'gridcat' catalog); "
        "default: GRIDCAT_WAREHOUSE",
    )
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="show Dagster's error logging with stack traces (-vv: its info lines too)",
    )
    demo.set_defaults(handler=cmd_demo)


def _parse_args(args: argparse.Namespace) -> tuple[int, int, float, int, int]:
    workers = parse_int(args.workers, "workers")
    if not 1 <= workers <= 16:
        raise invalid_argument("--workers must be between 1 and 16")
    customers = parse_int(args.customers, "customers")
    days = parse_int(args.days, "days")
    seed = parse_int(args.seed, "seed")
    try:
        fault_rate = float(args.fault_rate)
    except ValueError:
        raise invalid_argument(f"fault rate {args.fault_rate!r} is not a number") from None
    if not 0 <= fault_rate <= 1:
        raise invalid_argument(f"fault rate {fault_rate} must be between 0 and 1")
    if customers < 1 or days < 1 or days > 366:
        raise invalid_argument("need --customers >= 1 and 1 <= --days <= 366")
    return customers, days, fault_rate, seed, workers


_WORKER: dict = {}


def _init_worker(settings: Settings, seed: int, fault_rate: float, verbose: int = 0) -> None:
    """Per worker process: the definitions and the instance, built once."""
    if not verbose:
        quiet_dagster_warnings()
    from gridcat_pipelines.cli.dagster_instance import ensure_instance
    from gridcat_pipelines.definitions import build_defs
    from gridcat_pipelines.defs.ingestion.resources import AdsSourceResource

    _WORKER["defs"] = build_defs(settings, ads_source=AdsSourceResource(seed=seed, fault_rate=fault_rate))
    _WORKER["instance"] = ensure_instance(settings)
    _WORKER["verbose"] = verbose


def _pull(customer_id: str, day: date, feed_names: list[str] | None):
    """Run the ingest job for one partition (all feeds, or only ``feed_names``) in this worker;
    its :class:`~gridcat_pipelines.cli.local_runs.RunReport`."""
    from gridcat_pipelines.cli.local_runs import report_of, run_ingest

    return report_of(
        run_ingest(
            _WORKER["defs"], _WORKER["instance"], customer_id, day, feed_names, verbose=_WORKER.get("verbose", 0)
        )
    )


def _load(request):
    """Run one warehouse load the gate requested, in this worker; its ``RunReport``."""
    from gridcat_pipelines.cli.local_runs import load

    return load(_WORKER["defs"], _WORKER["instance"], request, verbose=_WORKER.get("verbose", 0))


def _run_all(pool, work: list[tuple], verb: str, fn=_pull, *, verbose: int = 0) -> int:
    """Run ``fn`` over ``work`` on the pool, showing progress and one line per failed step;
    returns how many runs failed."""
    if not work:
        return 0
    failed = 0
    futures = {pool.submit(fn, *item): item for item in work}
    # with -v the workers' Dagster logging goes to stderr too: plain lines, no bar to garble
    with Progress(len(work), verb, unit="run", plain=True if verbose else None) as progress:
        for n, future in enumerate(as_completed(futures), start=1):
            item = futures[future]
            report = future.result()
            failed += 0 if report.success else 1
            progress.advance(
                line=f"  [{n}/{len(work)}] {verb} {_describe(item)}: {'ok' if report.success else 'a step failed'}",
                postfix=_describe(item, short=True),
            )
            for failure in report.failures:
                progress.write(f"    {failure.line()}")
    return failed


def _describe(item: tuple, short: bool = False) -> str:
    """The run's partition and feeds (``short``: the partition only, for the bar)."""
    if len(item) == 3:
        customer_id, day, feed_names = item
        if short:
            return f"{customer_id} {day}"
        return f"{customer_id} {day} ({'all feeds' if feed_names is None else ', '.join(feed_names)})"
    (request,) = item
    key_range = request.partition_key_range
    where = str(request.partition_key) if key_range is None else f"{key_range.start}..{key_range.end}"
    if short:
        return where
    return f"{where} ({', '.join(key.path[-1] for key in request.asset_selection)})"


def _gate(pool, defs, instance, verbose: int = 0) -> int:
    """Evaluate the gate sensor and run the loads it requests until it requests none."""
    from gridcat_pipelines.cli.local_runs import gate_tick

    total = 0
    while requests := gate_tick(defs, instance):
        _progress(f"gate: {len(requests)} load run(s) for partitions at a new authoritative run")
        _run_all(pool, [(r,) for r in requests], "loaded", fn=_load, verbose=verbose)
        total += len(requests)
    return total


def _progress(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Run the demo and print its summary."""
    from gridcat_pipelines.cli.dagster_instance import ensure_instance
    from gridcat_pipelines.cli.local_runs import ensure_customer_partitions
    from gridcat_pipelines.config import cached_pipeline_config
    from gridcat_pipelines.definitions import build_defs
    from gridcat_pipelines.defs.ingestion.run_scope import customer_groups
    from gridcat_pipelines.sources.faults import FaultPlan
    from gridcat_pipelines.warehouse import open_warehouse
    from gridcat_pipelines.warehouse.status import warehouse_status

    n_customers, n_days, fault_rate, seed, workers = _parse_args(args)
    settings = _with_warehouse(settings, getattr(args, "warehouse", None))
    verbose = getattr(args, "verbose", 0)
    config = cached_pipeline_config(settings.feeds_path, settings.customers_path)
    if n_customers > len(config.customers):
        raise invalid_argument(
            f"--customers {n_customers}: {settings.customers_path} configures {len(config.customers)}"
        )
    started = time.monotonic()
    store = StateStore.open(settings.db_url, upgrade=True)
    instance = ensure_instance(settings)
    customers = list(config.customers.values())[:n_customers]
    ensure_customer_partitions(instance, [c.customer_id for c in customers], customer_groups(config))
    yesterday = date.today() - timedelta(days=1)
    days = [yesterday - timedelta(days=i) for i in range(n_days) if yesterday - timedelta(days=i) >= config.start_date]
    feeds = list(config.feeds.values())
    keys = [state_key(f, c, d) for c in customers for d in days for f in feeds]
    before = store.get_many(keys)

    first_pulls = [(c.customer_id, d, None) for c in customers for d in days]
    _progress(
        f"gridcat demo: {len(feeds)} feeds x {len(customers)} customers x {len(days)} days "
        f"= {len(keys)} partitions in {len(first_pulls)} Dagster runs, {workers} at a time "
        f"(instance {settings.dagster_home})"
    )
    defs = build_defs(settings)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(settings, seed, fault_rate, verbose)
    ) as pool:
        _run_all(pool, first_pulls, "pulled", verbose=verbose)
        after_first = store.get_many(keys)
        to_repull = [k for k, s in after_first.items() if s.status != "success"]
        by_partition: dict[tuple[str, date], list[str]] = {}
        for k in to_repull:
            by_partition.setdefault((k.customer_id, k.logical_date), []).append(k.query_name)
        _progress(
            f"re-pulling {len(to_repull)} partition(s) that failed validation or crashed mid-pull "
            f"({len(by_partition)} runs)"
        )
        _run_all(pool, [(c, d, names) for (c, d), names in sorted(by_partition.items())], "re-pulled", verbose=verbose)
        loads = _gate(pool, defs, instance, verbose)
        # conversion lag: re-pull one good partition, its authoritative run moves and it reloads
        moved_key = next((k for k in keys if after_first[k].status == "success"), keys[0])
        before_move = store.get(moved_key)
        _progress(f"re-pulling {moved_key} (conversion lag): a new run supersedes {before_move.current_run_id}")
        _run_all(
            pool,
            [(moved_key.customer_id, moved_key.logical_date, [moved_key.query_name])],
            "re-pulled",
            verbose=verbose,
        )
        loads += _gate(pool, defs, instance, verbose)
    total = len(first_pulls)

    final = store.get_many(keys)
    plan = FaultPlan(seed=seed, rate=fault_rate)
    faults = Counter(
        kind for k in keys if (kind := plan.fault_for(k.customer_id, config.feeds[k.query_name], k.logical_date, 0))
    )
    failed_rules = Counter(
        part.split(":")[0].strip()
        for s in after_first.values()
        if s.status == "failed" and s.error_message
        for part in s.error_message.split(";")
    )
    moved = [
        (k, after_first[k].current_run_id, final[k].current_run_id)
        for k in keys
        if final[k].current_run_id and after_first[k].current_run_id != final[k].current_run_id
    ]
    summary = {
        "partitions": len(keys),
        "dagster_runs": total + len(by_partition) + 1 + loads,
        "by_status": dict(sorted(Counter(s.status for s in final.values()).items())),
        "first_pull_by_status": dict(sorted(Counter(s.status for s in after_first.values()).items())),
        "injected_faults": dict(sorted(faults.items())),
        "failed_rules": dict(sorted(failed_rules.items())),
        "repulled": len(to_repull),
        "authoritative_run_moved": [{"partition": str(k), "from_run_id": a, "to_run_id": b} for k, a, b in moved],
        "new_partitions": sum(1 for k in keys if not before[k].exists),
        "moved_by_repull": {
            "partition": str(moved_key),
            "from_run_id": before_move.current_run_id,
            "to_run_id": final[moved_key].current_run_id,
        },
        "warehouse_loads": loads,
        "warehouse_target": settings.warehouse_kind,
        "warehouse": warehouse_status(final.values(), open_warehouse(settings))["summary"],
        "seconds": round(time.monotonic() - started, 1),
        "state_db": store.engine.url.render_as_string(hide_password=True),
        "dagster_home": str(settings.dagster_home),
    }
    if settings.warehouse_kind == "iceberg":
        summary["iceberg_tables"] = open_warehouse(settings).describe_tables()
    if args.json:
        print_json(summary)
    else:
        _print_summary(summary)
    return 0


def _with_warehouse(settings: Settings, kind: str | None) -> Settings:
    """``settings`` with ``--warehouse`` applied (checked like ``GRIDCAT_WAREHOUSE``)."""
    from dataclasses import replace

    from gridcat_pipelines.config import checked_warehouse_kind

    if kind is None:
        return settings
    return replace(settings, warehouse_kind=checked_warehouse_kind(kind, settings.warehouse_url, "--warehouse"))


def _print_summary(summary: dict) -> None:
    print(
        f"\ngridcat demo finished in {summary['seconds']} s: {summary['partitions']} partitions, "
        f"{summary['dagster_runs']} Dagster runs"
    )
    print("  state after first pull: " + ", ".join(f"{k}={v}" for k, v in summary["first_pull_by_status"].items()))
    print(
        "  injected faults:        " + (", ".join(f"{k}={v}" for k, v in summary["injected_faults"].items()) or "none")
    )
    print("  failed rules:           " + (", ".join(f"{k}={v}" for k, v in summary["failed_rules"].items()) or "none"))
    print(f"  re-pulled:              {summary['repulled']}")
    print("  final state:            " + ", ".join(f"{k}={v}" for k, v in summary["by_status"].items()))
    moved = summary["authoritative_run_moved"]
    print(f"  authoritative run moved: {len(moved)}")
    for item in moved[:10]:
        print(f"    {item['partition']}: {item['from_run_id'] or '(none)'} -> {item['to_run_id']}")
    if len(moved) > 10:
        print(f"    ... and {len(moved) - 10} more (--json lists all)")
    m = summary["moved_by_repull"]
    print(f"  re-pulled a good partition: {m['partition']}: {m['from_run_id']} -> {m['to_run_id']} (reloaded)")
    print(f"  warehouse loads:        {summary['warehouse_loads']}")
    print(
        f"  warehouse ({summary['warehouse_target']}): "
        + ", ".join(f"{k}={v}" for k, v in summary["warehouse"].items())
    )
    for table in summary.get("iceberg_tables", []):
        print(f"  iceberg {table['table']}: {table['snapshots']} snapshots at {table['location']}")
        for snap in table["latest"]:
            what = (
                f"{snap['customer_id']} {snap['logical_date']} run {snap['run_id']} (state v{snap['state_version']})"
                if snap["run_id"]
                else "(no load)"
            )
            print(f"    {snap['snapshot_id']} {snap['at'][:19]} {snap['operation']}: {what}")
    print(f"  state store: {summary['state_db']}")
    print(f"  Dagster UI:  DAGSTER_HOME={summary['dagster_home']} .venv/bin/dagster dev -w workspace.yaml")
