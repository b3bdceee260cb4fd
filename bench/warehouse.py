"""Benchmark loading one 1M-row ``keyword_view`` slice into each warehouse target, against the
floor for that target measured in the same run.

The slice has the feed's Arrow schema (``config/google_apis.yaml``) and ``--rows`` rows
(default 1,000,000) of generated values. Per round (``--rounds``, default 3):

* Parquet: ``ParquetWarehouse.replace_slice`` (stage under a temporary name, ``run_id`` column,
  footer metadata, rename over the slice) against ``pq.write_table`` of the same table.
* Iceberg (pyiceberg, SQL catalog on SQLite in a temp dir): ``IcebergWarehouse.replace_slice``
  (an overwrite filtered to the partition, one commit, summary properties) into a new partition,
  against a plain ``append`` of the same rows to a table of the same layout. Then
  ``--small-loads`` (default 1,000) loads of 10-row partitions, 100 per commit (as a packed load
  run commits them), and ``--one-by-one`` (default 200) with a commit each: seconds, the cost
  per load, the first and last commit, the snapshot count, and how many snapshots retention
  keeps when it expires the older ones (goal: 1,000 loads in under 60 s); what the partitions
  hold read from one metadata read (``loaded_slices``, as ``warehouse status`` and reconcile read
  it) against one read per partition; the files the sweep of unreferenced files removes after
  the expiry, and its time.
* PostgreSQL (``--pg-url``, its own scratch database): ``PostgresWarehouse.replace_slice`` into a
  new slice (fence row, ADBC binary COPY, commit) and again over that slice (plus the DELETE of
  the 1M rows it replaces), against the floor: a binary ``COPY FROM STDIN`` of the same rows
  (ADBC ingest into an unindexed table of the same columns, one transaction). Once, not per
  round: the load path before ADBC (psycopg ``COPY`` with ``to_pylist`` and ``write_row`` per
  row), for the record.

Then ``--pg-small-loads`` (default 500) 10-row PostgreSQL slices loaded one by one through one
``PostgresWarehouse`` (DDL once, ADBC connections kept), against the same loads each through a
new one (the DDL and a new ADBC connection per load); and what the slices hold read with one
query against one query per slice.

Printed: median seconds, rows/s and the ratio to the floor, with the goals (Parquet and
Iceberg <= 1.5x, PostgreSQL <= 2x) as met / NOT met.

Run:  .venv/bin/python bench/warehouse.py [--rows N] [--rounds R] [--small-loads N] [--one-by-one N]
          [--pg-small-loads N] [--pg-url URL] [--skip-previous]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pg_scratch import DEFAULT_PG_URL, scratch_database  # noqa: E402

from gridcat_pipelines.feeds.loader import load_feeds  # noqa: E402
from gridcat_pipelines.run_ids import new_run_id  # noqa: E402
from gridcat_pipelines.warehouse.parquet_target import ParquetWarehouse  # noqa: E402
from gridcat_pipelines.warehouse.postgres_target import (  # noqa: E402
    CUSTOMER_COLUMN,
    DATE_COLUMN,
    RUN_ID_COLUMN,
    SCHEMA,
    PostgresWarehouse,
    libpq_url,
)

FEED = "keyword_view"
CUSTOMER = "1234567890"
DAY = date(2026, 11, 1)


def keyword_view(rows: int, seed: int = 11) -> pa.Table:
    """``rows`` rows in the keyword_view feed's Arrow schema (vectorised, numpy)."""
    rng = np.random.default_rng(seed)
    schema = load_feeds()[FEED].arrow_schema()
    words = np.array([f"keyword {i} shoes online" for i in range(20_000)], dtype=object)
    enums = np.array(["ENABLED", "PAUSED", "REMOVED", "EXACT", "PHRASE", "BROAD"], dtype=object)
    columns = []
    for field in schema:
        if field.name == "customer_id":  # one account: the slice's
            values = pa.array(np.full(rows, int(CUSTOMER), dtype=np.int64))
        elif pa.types.is_int64(field.type):
            values = pa.array(rng.integers(0, 10**9, rows), pa.int64())
        elif pa.types.is_float64(field.type):
            values = pa.array(rng.random(rows) * 100)
        elif pa.types.is_date32(field.type):
            values = pa.array(np.full(rows, np.datetime64(DAY.isoformat(), "D"))).cast(pa.date32())
        elif field.name.endswith("keyword_text"):
            values = pa.array(words[rng.integers(0, len(words), rows)], pa.string())
        else:
            values = pa.array(enums[rng.integers(0, len(enums), rows)], pa.string())
        columns.append(values)
    return pa.Table.from_arrays(columns, schema=schema)


def timed(fn) -> float:
    """Seconds ``fn()`` takes."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def parquet_round(table: pa.Table) -> dict[str, float]:
    """Target and floor seconds in a fresh directory."""
    with tempfile.TemporaryDirectory(prefix="gridcat-bench-wh-") as root:
        floor = timed(lambda: pq.write_table(table, f"{root}/floor.parquet"))
        target = ParquetWarehouse(f"{root}/warehouse")
        load = timed(lambda: target.replace_slice(FEED, CUSTOMER, DAY, table, new_run_id(), 1))
    return {"parquet load": load, "parquet floor": floor}


def iceberg_round(table: pa.Table, n: int) -> dict[str, float]:
    """A new partition through the target, and a plain append of the same rows, in a fresh
    catalog; the two go in turns first (the first 1M-row write of a process is the slowest)."""
    from gridcat_pipelines.warehouse.iceberg_target import IcebergWarehouse, slice_rows, table_layout

    with tempfile.TemporaryDirectory(prefix="gridcat-bench-ice-") as home:
        target = IcebergWarehouse.open(Path(home))
        target.replace_slice(FEED, CUSTOMER, DAY, table.slice(0, 10), new_run_id(), 1)  # the table exists
        rows = slice_rows(table, CUSTOMER, date(2026, 11, 3), new_run_id())
        schema, spec = table_layout(rows.schema)
        plain = target.catalog.create_table(("google_ads", "plain"), schema=schema, partition_spec=spec)

        def load() -> float:
            return timed(lambda: target.replace_slice(FEED, CUSTOMER, date(2026, 11, 2), table, new_run_id(), 1))

        def floor() -> float:
            return timed(lambda: plain.append(rows))

        if n % 2:
            f, l = floor(), load()
        else:
            l, f = load(), floor()
    return {"iceberg load": l, "iceberg floor": f}


def iceberg_small_loads(loads: int, per_commit: int) -> dict[str, float]:
    """``loads`` 10-row partitions into one table, ``per_commit`` partitions per Iceberg commit
    (1: a commit per partition; more: ``stage_slices``, as a packed load run commits them);
    then snapshot retention."""
    from datetime import UTC, datetime, timedelta

    from gridcat_pipelines.warehouse.iceberg_target import IcebergWarehouse

    small = keyword_view(10)
    with tempfile.TemporaryDirectory(prefix="gridcat-bench-ice-") as home:
        target = IcebergWarehouse.open(Path(home))
        costs = []
        started = time.perf_counter()
        for first in range(0, loads, per_commit):
            slices = []
            for n in range(first, min(first + per_commit, loads)):
                customer = str(1_000_000_000 + n % 100)
                rows = small.set_column(0, "customer_id", pa.repeat(pa.scalar(int(customer)), 10))
                slices.append((customer, date.fromordinal(DAY.toordinal() - n // 100), rows, new_run_id(), 1))
            costs.append(timed(lambda: target.stage_slices(FEED, slices).commit()))
        total = time.perf_counter() - started
        snapshots = len(target.table(FEED).snapshots())
        partitions = [
            (str(1_000_000_000 + n % 100), date.fromordinal(DAY.toordinal() - n // 100)) for n in range(loads)
        ]
        read_bulk = timed(lambda: target.loaded_slices(FEED, partitions))
        read_each = timed(lambda: [target.loaded_slice(FEED, c, d) for c, d in partitions]) if per_commit > 1 else None
        target.expire_snapshots(datetime.now(UTC) + timedelta(seconds=1))
        kept = len(target.table(FEED).snapshots())
        location = Path(target.table(FEED).location().removeprefix("file://"))
        files_before = sum(1 for p in location.rglob("*") if p.is_file())
        sweep_started = time.perf_counter()
        swept = target.remove_unreferenced_files(datetime.now(UTC) + timedelta(seconds=1))[FEED]
        sweep = time.perf_counter() - sweep_started
    return {
        "seconds": total,
        "per_load_ms": total / loads * 1000,
        "first_commit_ms": costs[0] * 1000,
        "last_commit_ms": costs[-1] * 1000,
        "snapshots": snapshots,
        "kept": kept,
        "read_bulk_s": read_bulk,
        "read_each_s": read_each,
        "files_before_sweep": files_before,
        "swept_files": swept.files,
        "swept_mb": swept.bytes / 1e6,
        "sweep_s": sweep,
    }


def copy_floor(url: str, table: pa.Table, n: int) -> float:
    """Binary COPY FROM STDIN of the same rows into an unindexed table, one transaction."""
    import adbc_driver_postgresql.dbapi as adbc_pg

    name = f"floor_{n}"
    with adbc_pg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        cur.adbc_ingest(name, table, mode="create", db_schema_name="public")
        conn.commit()
        seconds = time.perf_counter() - started
        cur.execute(f'DROP TABLE public."{name}"')
        conn.commit()
    return seconds


def postgres_round(url: str, table: pa.Table, n: int) -> dict[str, float]:
    """A new slice, a replace of it, and the floor."""
    target = PostgresWarehouse(url)
    day = date.fromordinal(DAY.toordinal() + n)
    new = timed(lambda: target.replace_slice(FEED, CUSTOMER, day, table, new_run_id(), 1))
    again = timed(lambda: target.replace_slice(FEED, CUSTOMER, day, table, new_run_id(), 2))
    with_tail = table.append_column(RUN_ID_COLUMN, pa.repeat(pa.scalar(new_run_id()), table.num_rows))
    floor = copy_floor(url, with_tail, n)
    return {"postgres load (new slice)": new, "postgres load (replace 1M rows)": again, "postgres floor": floor}


def previous_postgres_load(url: str, table: pa.Table) -> float:
    """The load path before ADBC: psycopg COPY, every value through Python (to_pylist, write_row)."""
    names = table.column_names
    day = date(2030, 1, 1)
    with psycopg.connect(libpq_url(url)) as conn:
        started = time.perf_counter()
        columns = ", ".join(f'"{c}"' for c in (*names, RUN_ID_COLUMN, CUSTOMER_COLUMN, DATE_COLUMN))
        with conn.cursor() as cur, cur.copy(f'COPY "{SCHEMA}"."{FEED}" ({columns}) FROM STDIN') as stream:
            tail = (new_run_id(), CUSTOMER, day)
            data = [table.column(n).to_pylist() for n in names]
            for values in zip(*data):
                stream.write_row((*values, *tail))
        conn.commit()
        return time.perf_counter() - started


def postgres_small_loads(url: str, loads: int) -> dict[str, float]:
    """``loads`` 10-row slices of one feed loaded one by one through one ``PostgresWarehouse``
    (its DDL once, its ADBC connections kept), against the baseline of the same loads each
    through a new ``PostgresWarehouse`` (DDL and a new ADBC connection per load, as every load
    did before); then what the partitions hold, one query against one query per partition."""
    small = keyword_view(10)
    partitions = [(str(2_000_000_000 + n % 100), date.fromordinal(DAY.toordinal() - n // 100)) for n in range(loads)]

    def load_all(feed: str, target) -> float:
        started = time.perf_counter()
        for customer, day in partitions:
            rows = small.set_column(0, "customer_id", pa.repeat(pa.scalar(int(customer)), 10))
            target().replace_slice(feed, customer, day, rows, new_run_id(), state_version=1)
        return time.perf_counter() - started

    shared = PostgresWarehouse(url)
    reused = load_all("small_reused", lambda: shared)
    fresh = load_all("small_fresh", lambda: PostgresWarehouse(url))
    bulk = timed(lambda: shared.loaded_slices("small_reused", partitions))
    each = timed(lambda: [shared.loaded_slice("small_reused", c, d) for c, d in partitions])
    return {"reused_s": reused, "fresh_s": fresh, "read_bulk_s": bulk, "read_each_s": each}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small-loads", type=int, default=1000, help="10-row Iceberg loads, 100 per commit")
    parser.add_argument(
        "--one-by-one", type=int, default=200, help="10-row Iceberg loads, one commit each (slower: fewer)"
    )
    parser.add_argument("--pg-small-loads", type=int, default=500, help="10-row PostgreSQL loads, one by one")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--skip-previous", action="store_true", help="do not time the pre-ADBC load path")
    args = parser.parse_args()
    table = keyword_view(args.rows)
    print(f"{FEED}: {args.rows:,} rows, {table.num_columns} columns, {table.nbytes / 2**20:.0f} MiB in Arrow")
    rounds: list[dict[str, float]] = []
    iceberg_round(table, 0)  # warm-up, not counted: the process's first 1M-row Iceberg write
    with scratch_database(args.pg_url, "gridcat_bench_warehouse") as url:
        for n in range(args.rounds):
            figures = parquet_round(table)
            figures.update(iceberg_round(table, n))
            figures.update(postgres_round(url, table, n))
            rounds.append(figures)
            print(f"round {n + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in figures.items()))
        previous = None if args.skip_previous else previous_postgres_load(url, table)
        pg_small = postgres_small_loads(url, args.pg_small_loads) if args.pg_small_loads else None
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print(f"\n{'':<34}{'median s':>10}{'rows/s':>12}{'x floor':>9}")
    goals = {"parquet": 1.5, "iceberg": 1.5, "postgres": 2.0}
    verdicts = []
    for name, seconds in med.items():
        target = name.split()[0]
        floor = med[f"{target} floor"]
        print(f"{name:<34}{seconds:>10.2f}{args.rows / seconds:>12,.0f}{seconds / floor:>9.2f}")
        if "floor" not in name:
            ok = seconds / floor <= goals[target]
            verdicts.append(
                f"{name} {seconds / floor:.2f}x floor (goal <= {goals[target]}x: {'met' if ok else 'NOT met'})"
            )
    if previous is not None:
        print(
            f"{'postgres, before ADBC (per value)':<34}{previous:>10.2f}{args.rows / previous:>12,.0f}"
            f"{previous / med['postgres floor']:>9.2f}   (one run)"
        )
    print()
    for line in verdicts:
        print(line)
    for loads, per_commit in ((args.small_loads, 100), (args.one_by_one, 1)):
        if not loads:
            continue
        small = iceberg_small_loads(loads, per_commit)
        goal = f" (goal: 1,000 in < 60 s: {'met' if small['seconds'] * 1000 / loads < 60 else 'NOT met'})"
        print(
            f"iceberg, {loads:,} loads of 10-row partitions, {per_commit} per commit: {small['seconds']:.1f} s, "
            f"{small['per_load_ms']:.0f} ms per load{goal}; commit {small['first_commit_ms']:.0f} ms first, "
            f"{small['last_commit_ms']:.0f} ms last; {small['snapshots']:,} snapshots, {small['kept']} kept "
            "after expiring the older ones"
        )
        if small["read_each_s"] is not None:
            print(
                f"  what the {loads:,} partitions hold (warehouse status, reconcile): one metadata read "
                f"{small['read_bulk_s']:.2f} s, one read per partition {small['read_each_s']:.2f} s "
                f"({small['read_each_s'] / small['read_bulk_s']:.0f}x)"
            )
        print(
            f"  sweep of unreferenced files after the expiry: {small['swept_files']:,} of "
            f"{small['files_before_sweep']:,} files ({small['swept_mb']:.1f} MB) in {small['sweep_s']:.2f} s"
        )
    if pg_small is not None:
        n = args.pg_small_loads
        print(
            f"postgres, {n:,} loads of 10-row slices one by one: {pg_small['reused_s']:.1f} s "
            f"({pg_small['reused_s'] / n * 1000:.1f} ms per load) through one warehouse object; baseline, "
            f"a new object per load (DDL and ADBC connect each time): {pg_small['fresh_s']:.1f} s "
            f"({pg_small['fresh_s'] / pg_small['reused_s']:.1f}x)"
        )
        print(
            f"  what the {n:,} slices hold: one query {pg_small['read_bulk_s']:.3f} s, one query per slice "
            f"{pg_small['read_each_s']:.2f} s ({pg_small['read_each_s'] / pg_small['read_bulk_s']:.0f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
