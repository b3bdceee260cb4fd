"""Benchmark gate sensor ticks on PostgreSQL: 1,000 changes at 100k and 1M rows, 20,000 at 100k.

The 20,000 is ``CHANGES_PER_TICK``, what one tick of the sensor reads at most.

For each size N, in a new database on the server at ``--pg-url`` (default
$GRIDCAT_BENCH_PG_URL, else $GRIDCAT_TEST_PG_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/postgres), migrated with ``migrations.upgrade``
and dropped WITH (FORCE) at the end, even on error:

1. Fill (set-based, ``INSERT ... SELECT generate_series``): N ``partition_state`` rows at
   version 1 (90% success, 10% failed; the configured feeds x 300 days from the pipeline's
   start date x enough customers) and N ``partition_state_history`` rows, outcome
   ``applied``, state_version 1, change_seq 1..N; ``state_change_counter.last_seq = N``. The
   backdated run ids are UUIDv7 strings older than any run made now. Then ANALYZE.
2. Write 1,000 changes through the real ``StateStore.record_results`` (a new run for 1,000
   distinct existing keys, ~80% success / 20% failed, in batches of 100).
3. Time one gate tick from cursor N, re-run ``--ticks`` times with the same cursor (median):
   the sensor itself (``build_sensor_context`` + ``evaluate_tick`` on ``build_defs`` with a
   temporary ``GRIDCAT_HOME``, as ``gridcat_pipelines_tests/test_gate.py`` evaluates it; this
   opens the store resource each tick like a daemon tick does), ``plan_loads`` alone on an
   open store, with its two queries (``changes_since``, ``get_many``) timed apart, and the
   building of the run requests (``load_requests``) alone.
4. Baseline, same run, same data: a naive full-table gate, ``SELECT`` every success row and
   diff its (key, run, version) against the set remembered from before the 1,000 changes.
5. At N = ``--big-at`` (default 100,000) only, after the above: write ``--big-changes``
   (default 20,000) more changes through ``record_results`` the same way (new runs for
   distinct existing keys, ~80% success, batches of 100; the state table keeps N rows), then
   time, from the cursor before them and with the same median: one full tick (as in 3),
   ``plan_loads`` alone (and its two queries), and ``load_requests`` alone; the rest of the
   tick is Dagster's (context, resources, checking the run requests).

Prints the medians, the 1M/100k ratios and naive/tick ratios, the run requests, changes/s
and the ratio of the big tick to the 1,000-change tick at the same N, and the targets (tick
<= 1 s at the largest size; flat: largest/smallest ratio <= 1.5; 20,000 changes in one tick
< 10 s) as met / NOT met. Exit 0 either way. With the defaults it takes about two minutes,
most of it the 1M fill; ``--sizes 100000`` (one size: no 1M/100k ratios) takes under half a
minute, ``--big-changes 0`` skips step 5.

Run:  .venv/bin/python bench/sensor.py [--sizes 100000,1000000] [--ticks 7]
          [--big-changes 20000] [--big-at 100000] [--pg-url URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import sqlalchemy as sa
from pg_scratch import DEFAULT_PG_URL, scratch_database

from gridcat_pipelines.cli.dagster_instance import ensure_instance
from gridcat_pipelines.config import Settings, cached_pipeline_config
from gridcat_pipelines.definitions import build_defs
from gridcat_pipelines.defs.gate.sensors import CHANGES_PER_TICK, GATE_SENSOR_NAME, load_requests
from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION, last_partition_date
from gridcat_pipelines.gate import plan_loads
from gridcat_pipelines.run_ids import new_run_id
from gridcat_pipelines.state import migrations
from gridcat_pipelines.state.db import create_state_engine
from gridcat_pipelines.state.keys import PartitionKey
from gridcat_pipelines.state.models import ValidationResult
from gridcat_pipelines.state.store import StateStore

DAYS = 300
CHANGES = 1000
FIRST_CUSTOMER = 2_000_000_000
TICK_TARGET_S = 1.0
FLAT_TARGET = 1.5
BIG_TICK_TARGET_S = 10.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def customers_for(largest: int, feeds: list[str]) -> int:
    """One customer count for every size: customers x feeds x DAYS >= the largest size.

    Sizes differ in days of history (the way the table grows in production), not in
    customers, so every size has the same partition fan-out per tick.
    """
    return -(-largest // (len(feeds) * DAYS))


def key_of(g: int, customers: int, feeds: list[str], start: date) -> PartitionKey:
    """The key of fill row ``g`` (same mapping as the SQL in :func:`fill`)."""
    return PartitionKey(
        "google_ads",
        str(FIRST_CUSTOMER + g % customers),
        feeds[(g // customers) % len(feeds)],
        start + timedelta(g // (customers * len(feeds))),
    )


def fill(engine: sa.Engine, n: int, customers: int, feeds: list[str], start: date) -> None:
    """N state rows and N applied history rows (change_seq 1..N, day by day), set-based."""
    # g -> customer = g % C, feed = (g / C) % feeds, day = start + g / (C * feeds)
    # run id: a UUIDv7 at start - 30 days (older than any new_run_id()), g in the last 12 hex.
    ms = int(datetime.combine(start - timedelta(30), datetime.min.time(), UTC).timestamp() * 1000)
    ms_hex = f"{ms:012x}"
    params = {
        "n": n,
        "nf": len(feeds),
        "nc": customers,
        "c0": FIRST_CUSTOMER,
        "start": start,
        "feeds": feeds,
        "run_prefix": f"{ms_hex[:8]}-{ms_hex[8:]}-7000-8000-",
    }
    rows = """
        SELECT 'google_ads'::text AS source,
               (:c0 + g % :nc)::text AS customer_id,
               (CAST(:feeds AS text[]))[(g / :nc) % :nf + 1] AS query_name,
               CAST(:start AS date) + (g / (:nc * :nf))::int AS logical_date,
               CASE WHEN g % 10 = 9 THEN 'failed' ELSE 'success' END AS status,
               :run_prefix || lpad(to_hex(g), 12, '0') AS run_id,
               (g % 500)::bigint AS record_count,
               CASE WHEN g % 10 = 9 THEN 'cost_non_negative: 1 row' END AS error_message,
               g
        FROM generate_series(0, :n - 1) AS g
    """
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"""
            INSERT INTO partition_state (source, customer_id, query_name, logical_date, status,
                current_run_id, schema_version, record_count, updated_at, error_message,
                attempt_count, tags, version)
            SELECT source, customer_id, query_name, logical_date, status, run_id, '1', record_count,
                   now(), error_message, 1, '{{}}'::jsonb, 1
            FROM ({rows}) r"""),
            params,
        )
        conn.execute(
            sa.text(f"""
            INSERT INTO partition_state_history (source, customer_id, query_name, logical_date, run_id,
                outcome, status, schema_version, record_count, error_message, tags, result_hash,
                state_version, change_seq, recorded_at, idempotency_key)
            SELECT source, customer_id, query_name, logical_date, run_id, 'applied', status, '1',
                   record_count, error_message, NULL, md5(run_id), 1, g + 1, now(), NULL
            FROM ({rows}) r ORDER BY g"""),
            params,
        )
        conn.execute(sa.text("UPDATE state_change_counter SET last_seq = :n WHERE id = 1"), {"n": n})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE partition_state")
        conn.exec_driver_sql("VACUUM ANALYZE partition_state_history")


def write_changes(
    store: StateStore, n: int, customers: int, feeds: list[str], start: date, rng: random.Random, count: int = CHANGES
) -> None:
    """``count`` new runs for distinct existing keys through ``record_results`` (batches of 100)."""
    results = []
    for g in sorted(rng.sample(range(n), count)):
        key = key_of(g, customers, feeds, start)
        if rng.random() < 0.8:
            results.append(ValidationResult(key, new_run_id(), "success", "1", rng.randrange(1000)))
        else:
            results.append(ValidationResult(key, new_run_id(), "failed", "1", 1, "cost_non_negative: 1 row"))
    rng.shuffle(results)
    for i in range(0, len(results), 100):
        store.record_results(results[i : i + 100])


def success_snapshot(engine: sa.Engine) -> set[tuple]:
    """The naive gate's read: every success row's key, run and version, as a set."""
    with engine.connect() as conn:
        result = conn.exec_driver_sql(
            "SELECT source, customer_id, query_name, logical_date, current_run_id, version"
            " FROM partition_state WHERE status = 'success'"
        )
        return set(result)


def median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def run_size(n: int, customers: int, args: argparse.Namespace) -> dict:
    """Every figure for ``n`` states, in a scratch database of its own."""
    with scratch_database(args.pg_url, "gridcat_bench_sensor") as url:
        return _run_size(url, n, customers, args)


def _run_size(url: str, n: int, customers: int, args: argparse.Namespace) -> dict:
    home = tempfile.TemporaryDirectory(prefix="gridcat-bench-sensor-")
    engine = create_state_engine(url)
    try:
        migrations.upgrade(engine)
        settings = Settings.from_env({"GRIDCAT_HOME": home.name, "GRIDCAT_DB_URL": url})
        config = cached_pipeline_config(settings.feeds_path, settings.customers_path)
        feeds, start = sorted(config.feeds), config.start_date
        days = -(-n // (customers * len(feeds)))
        log(f"N={n:,}: fill {customers} customers x {len(feeds)} feeds x {days} days ...")
        t0 = time.perf_counter()
        fill(engine, n, customers, feeds, start)
        fill_s = time.perf_counter() - t0
        store = StateStore(engine)
        before = success_snapshot(engine)
        write_changes(store, n, customers, feeds, start, random.Random(n))
        assert store.last_change_seq() == n + CHANGES

        instance = ensure_instance(settings)
        customer_ids = [str(FIRST_CUSTOMER + c) for c in range(customers)]
        instance.add_dynamic_partitions(CUSTOMERS_PARTITION, customer_ids)
        defs = build_defs(settings)
        sensor = defs.resolve_sensor_def(GATE_SENSOR_NAME)
        repo, ref = defs.get_repository_def(), instance.get_ref()

        def tick_from(seq: int):
            cursor = json.dumps({"seq": seq})

            def tick():
                # instance_ref as the daemon passes it: Dagster then validates the requests'
                # dynamic partition keys through its per-tick caching loader.
                with (
                    dg.build_sensor_context(
                        instance=instance,
                        instance_ref=ref,
                        cursor=cursor,
                        resources=defs.resources,
                        repository_def=repo,
                        sensor_name=GATE_SENSOR_NAME,
                    ) as ctx,
                    dg.partition_loading_context(dynamic_partitions_store=instance),
                ):
                    return sensor.evaluate_tick(ctx)

            return tick

        def plan_from(seq: int):
            return lambda: plan_loads(
                store,
                seq,
                feeds=set(feeds),
                customers=set(customer_ids),
                start_date=start,
                end_date=last_partition_date(),
                limit=CHANGES_PER_TICK,
            )

        def naive():
            return success_snapshot(engine) - before

        tick, plan = tick_from(n), plan_from(n)
        keys = [c.key for c in store.changes_since(n, CHANGES)]
        log(f"N={n:,}: {args.ticks} ticks each ...")
        tick()  # warm: imports, statement caches, code paths
        out = {"state_rows": n, "customers": customers, "days": days, "fill_s": fill_s}
        out["tick_s"], result = median_time(tick, args.ticks)
        out["plan_loads_s"], planned = median_time(plan, args.ticks)
        out["changes_since_s"], _ = median_time(lambda: store.changes_since(n, CHANGES), args.ticks)
        out["get_many_s"], _ = median_time(lambda: store.get_many(keys), args.ticks)
        out["requests_s"], _ = median_time(lambda: load_requests(planned.loads, "load|"), args.ticks)
        out["naive_s"], diff = median_time(naive, args.ticks)
        out.update(
            {
                "run_requests": len(result.run_requests or []),
                "planned_loads": len(planned.loads),
                "naive_new_success": len(diff),
                "next_cursor": json.loads(result.cursor)["seq"],
            }
        )
        if n == args.big_at and args.big_changes:
            out["big"] = _big_tick(store, n, customers, feeds, start, tick_from, plan_from, args)
        instance.dispose()
        return out
    finally:
        engine.dispose()
        home.cleanup()


def _big_tick(
    store: StateStore,
    n: int,
    customers: int,
    feeds: list[str],
    start: date,
    tick_from,
    plan_from,
    args: argparse.Namespace,
) -> dict:
    """After the 1,000-change figures: ``--big-changes`` more changes, one tick over all of them."""
    seq0, count = store.last_change_seq(), args.big_changes
    log(f"N={n:,}: write {count:,} changes through record_results ...")
    t0 = time.perf_counter()
    write_changes(store, n, customers, feeds, start, random.Random(-n), count)
    write_s = time.perf_counter() - t0
    assert store.last_change_seq() == seq0 + count
    tick, plan = tick_from(seq0), plan_from(seq0)
    keys = list(dict.fromkeys(c.key for c in store.changes_since(seq0, CHANGES_PER_TICK)))
    log(f"N={n:,}: {args.ticks} ticks of {count:,} changes each ...")
    tick()  # warm
    big = {"changes": count, "cursor": seq0, "write_s": write_s}
    big["tick_s"], result = median_time(tick, args.ticks)
    big["plan_loads_s"], planned = median_time(plan, args.ticks)
    big["changes_since_s"], _ = median_time(lambda: store.changes_since(seq0, CHANGES_PER_TICK), args.ticks)
    big["get_many_s"], _ = median_time(lambda: store.get_many(keys), args.ticks)
    big["requests_s"], requests = median_time(lambda: load_requests(planned.loads, "load|"), args.ticks)
    big["rest_s"] = big["tick_s"] - big["plan_loads_s"] - big["requests_s"]
    big.update(
        {
            "run_requests": len(result.run_requests or []),
            "planned_loads": len(planned.loads),
            "built_requests": len(requests),
            "problems": len(planned.problems),
            "next_cursor": json.loads(result.cursor)["seq"],
            "changes_per_s": count / big["tick_s"],
        }
    )
    return big


TIMES = (
    ("tick_s", "tick (sensor, evaluate_tick)"),
    ("plan_loads_s", "plan_loads alone"),
    ("changes_since_s", "  changes_since"),
    ("get_many_s", "  get_many (1,000 keys)"),
    ("requests_s", "run request building"),
    ("naive_s", "naive full-table diff"),
)
BIG_TIMES = (
    ("write_s", "write them (record_results, batches of 100)"),
    ("tick_s", "tick (sensor, evaluate_tick)"),
    ("plan_loads_s", "plan_loads alone"),
    ("changes_since_s", "  changes_since"),
    ("get_many_s", "  get_many"),
    ("requests_s", "run request building (load_requests)"),
    ("rest_s", "rest of the tick (Dagster's evaluation)"),
)


def report(rows: list[dict], args: argparse.Namespace) -> dict:
    small, large = rows[0], rows[-1]
    ratios, targets = {}, {}
    if len(rows) > 1:
        ratios.update(
            {
                f"{label.strip()} {large['state_rows']:,}/{small['state_rows']:,}": large[k] / small[k]
                for k, label in TIMES
            }
        )
    for r in rows:
        ratios[f"naive/tick at {r['state_rows']:,}"] = r["naive_s"] / r["tick_s"]
    targets[f"tick <= {TICK_TARGET_S:g} s at {large['state_rows']:,} rows"] = large["tick_s"] <= TICK_TARGET_S
    if len(rows) > 1:
        flat = large["tick_s"] / small["tick_s"]
        targets[f"flat: tick {large['state_rows']:,}/{small['state_rows']:,} <= {FLAT_TARGET:g}"] = flat <= FLAT_TARGET
    for r in rows:
        if "big" in r:
            big = r["big"]
            ratios[f"tick {big['changes']:,}/{CHANGES:,} changes at {r['state_rows']:,}"] = big["tick_s"] / r["tick_s"]
            targets[f"{big['changes']:,} changes in one tick < {BIG_TICK_TARGET_S:g} s"] = (
                big["tick_s"] < BIG_TICK_TARGET_S
            )
    return {"sizes": rows, "ratios": ratios, "targets": targets, "ticks_per_median": args.ticks}


def print_table(out: dict) -> None:
    rows = out["sizes"]
    print(
        f"gate sensor tick, PostgreSQL state store, {CHANGES:,} changes after the cursor, "
        f"median of {out['ticks_per_median']} runs each (same cursor)"
    )
    print(f"{'':40}" + "".join(f"{r['state_rows']:>14,}" for r in rows))
    print(
        f"{'layout (customers x feeds x days)':40}" + "".join(f"{r['customers']:>7} x 7 x {r['days']:<3}" for r in rows)
    )
    print(f"{'fill (s)':40}" + "".join(f"{r['fill_s']:>14.1f}" for r in rows))
    for key, label in TIMES:
        print(f"{label + ' (ms)':40}" + "".join(f"{r[key] * 1000:>14.1f}" for r in rows))
    for key in ("run_requests", "planned_loads", "naive_new_success", "next_cursor"):
        print(f"{key:40}" + "".join(f"{r[key]:>14}" for r in rows))
    for r in rows:
        if "big" not in r:
            continue
        big = r["big"]
        print(
            f"\ngate sensor tick, {big['changes']:,} changes after the cursor (seq {big['cursor']:,}) at "
            f"{r['state_rows']:,} state rows, median of {out['ticks_per_median']} runs each (same cursor)"
        )
        for key, label in BIG_TIMES:
            print(f"{label + ' (ms)':52}{big[key] * 1000:>12.1f}")
        for key in ("run_requests", "built_requests", "planned_loads", "problems", "next_cursor"):
            print(f"{key:52}{big[key]:>12}")
        print(f"{'changes/s (tick)':52}{big['changes_per_s']:>12,.0f}")
    for name, value in out["ratios"].items():
        print(f"ratio {name}: {value:.2f}")
    for name, ok in out["targets"].items():
        print(f"target {name}: {'met' if ok else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="state row counts, comma-separated")
    parser.add_argument("--ticks", type=int, default=7, help="ticks per median (>= 5 recommended)")
    parser.add_argument(
        "--big-changes",
        type=int,
        default=CHANGES_PER_TICK,
        help=f"changes in the big tick (default CHANGES_PER_TICK = {CHANGES_PER_TICK:,}; 0 skips it)",
    )
    parser.add_argument("--big-at", type=int, default=100_000, help="the size (one of --sizes) of the big tick")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if not sizes or sizes[0] < CHANGES or args.ticks < 1:
        parser.error(f"need --sizes >= {CHANGES} and --ticks >= 1")
    if args.big_changes and (
        args.big_at not in sizes or not 0 < args.big_changes <= min(CHANGES_PER_TICK, args.big_at)
    ):
        parser.error(f"--big-at must be one of --sizes and 0 < --big-changes <= min({CHANGES_PER_TICK:,}, --big-at)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so a kill still drops the databases
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    config = cached_pipeline_config(Settings.from_env().feeds_path, Settings.from_env().customers_path)
    customers = customers_for(sizes[-1], sorted(config.feeds))
    rows = [run_size(n, customers, args) for n in sizes]
    out = report(rows, args)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print_table(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
