"""Benchmark the daily schedule at thousands of accounts: evaluation time per tick, runs a day,
partitions per asset, against the same accounts with one partition per customer.

For ``--customers N`` synthetic accounts over four time zones (UTC, America/New_York,
Europe/Berlin, Asia/Tokyo) the hourly schedule ``google_ads_daily_pull`` is evaluated the way
the daemon evaluates it (``build_schedule_context`` with ``scheduled_execution_time``) at 48
hourly ticks; each tick's requests are recorded as runs with their tags (what the daemon's
launch leaves for the next tick's dedupe), not executed. The first day starts cold (every
zone's current window at once); the second is a steady day, whose figures are printed:

- evaluation time per tick, median and max;
- ingest runs requested that day and the customer-days they cover;
- partitions per asset over 3 years.

Baseline in the same run: the same accounts with one partition per customer
(``pipeline.shard_above`` above N), still packed into range runs. (Before packed runs, the
schedule asked for one run per customer-day: 20,000 runs a day at 5,000 accounts, 24 s per
evaluation.) The instance is a temporary SQLite one.

Run:  .venv/bin/python bench/schedule.py [--customers 5000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.test_utils import create_run_for_test

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gridcat_pipelines.cli.dagster_instance import ensure_instance  # noqa: E402
from gridcat_pipelines.config import Settings  # noqa: E402
from gridcat_pipelines.definitions import build_defs  # noqa: E402
from gridcat_pipelines.defs.ingestion.jobs import INGEST_JOB_NAME  # noqa: E402
from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION  # noqa: E402
from gridcat_pipelines.defs.ingestion.run_scope import customer_groups, request_scope  # noqa: E402
from gridcat_pipelines.defs.ingestion.schedules import DAILY_PULL_SCHEDULE_NAME  # noqa: E402

ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Asia/Tokyo")
DAYS_IN_3_YEARS = 3 * 365 + 1
START = datetime(2026, 11, 25, tzinfo=UTC)


def write_configs(tmp: Path, n: int, shard_above: int | None) -> tuple[Path, Path]:
    """The shipped feeds (with ``shard_above`` when given) and ``n`` customers over ``ZONES``."""
    feeds_doc = yaml.safe_load((REPO / "config" / "google_apis.yaml").read_text())
    if shard_above is not None:
        feeds_doc["pipeline"]["shard_above"] = shard_above
    customers = [
        {"customer_id": str(1_000_000_000 + i), "name": f"A{i}", "time_zone": ZONES[i % len(ZONES)], "currency": "USD"}
        for i in range(n)
    ]
    feeds, customers_path = tmp / "feeds.yaml", tmp / "customers.yaml"
    feeds.write_text(yaml.safe_dump(feeds_doc, sort_keys=False))
    customers_path.write_text(yaml.safe_dump({"customers": customers}, sort_keys=False))
    return feeds, customers_path


def measure(n: int, shard_above: int | None, tmp: Path) -> dict:
    """48 hourly ticks for ``n`` accounts; the steady day's figures."""
    tmp.mkdir(parents=True)
    feeds, customers = write_configs(tmp, n, shard_above)
    env = {
        "GRIDCAT_HOME": str(tmp / "home"),
        "GRIDCAT_FEEDS_CONFIG": str(feeds),
        "GRIDCAT_CUSTOMERS_CONFIG": str(customers),
    }
    settings = Settings.from_env(env)
    instance = ensure_instance(settings)
    config = settings.pipeline_config()
    groups = customer_groups(config)
    instance.add_dynamic_partitions(CUSTOMERS_PARTITION, groups.keys())
    defs = build_defs(settings)
    schedule = defs.resolve_schedule_def(DAILY_PULL_SCHEDULE_NAME)
    partitions_def = defs.resolve_job_def(INGEST_JOB_NAME).partitions_def
    evals, runs, customer_days = [], 0, 0
    for hour in range(48):
        started = time.perf_counter()
        with dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=START + timedelta(hours=hour),
            repository_def=defs.get_repository_def(),
        ) as ctx:
            requests = schedule.evaluate_tick(ctx).run_requests or []
        elapsed = time.perf_counter() - started
        for request in requests:
            create_run_for_test(
                instance, job_name=INGEST_JOB_NAME, tags={**request.tags, "dagster/run_key": request.run_key}
            )
        if hour >= 24:
            evals.append(elapsed)
            runs += len(requests)
            customer_days += sum(
                len(p.customer_ids) for r in requests for p in request_scope(config, partitions_def, instance, r)
            )
        print(
            f"  [{'cold' if hour < 24 else 'steady'} {hour % 24:02d}:00] {len(requests)} run(s) in {elapsed * 1000:.0f} ms",
            file=sys.stderr,
        )
    instance.dispose()
    return {
        "groups": len(groups.keys()),
        "eval_median_s": statistics.median(evals),
        "eval_max_s": max(evals),
        "runs": runs,
        "customer_days": customer_days,
        "partitions_3y": len(groups.keys()) * DAYS_IN_3_YEARS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gridcat-bench-schedule-") as tmp:
        sharded = measure(args.customers, None, Path(tmp) / "sharded")
        baseline = measure(args.customers, args.customers, Path(tmp) / "per_customer")
    print(f"daily schedule, {args.customers} accounts, steady day (48 hourly ticks; the second day counts)")
    print(f"{'':28}{'customer groups':>18}{'per customer':>16}{'ratio':>8}")
    rows = [
        ("partition keys", sharded["groups"], baseline["groups"]),
        ("partitions/asset, 3 years", sharded["partitions_3y"], baseline["partitions_3y"]),
        ("customer-days requested", sharded["customer_days"], baseline["customer_days"]),
        ("ingest runs a day", sharded["runs"], baseline["runs"]),
        ("tick evaluation median (s)", sharded["eval_median_s"], baseline["eval_median_s"]),
        ("tick evaluation max (s)", sharded["eval_max_s"], baseline["eval_max_s"]),
    ]
    for name, a, b in rows:
        ratio = f"{a / b:.3f}" if b else "-"
        fmt = (lambda v: f"{v:.3f}") if isinstance(a, float) else (lambda v: f"{v}")
        print(f"{name:28}{fmt(a):>18}{fmt(b):>16}{ratio:>8}")
    goals = [
        ("tick evaluation <= 5 s", sharded["eval_max_s"] <= 5),
        ("partitions/asset over 3 years <= 100,000", sharded["partitions_3y"] <= 100_000),
        ("ingest runs a day <= 500 (the gate's packed loads come on top)", sharded["runs"] <= 500),
    ]
    for name, ok in goals:
        print(f"goal {name}: {'PASS' if ok else 'MISS'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
