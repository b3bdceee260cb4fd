"""Benchmark the partition state store's write path against plain INSERTs (SQLite, PostgreSQL).

1. Single writes: ``StateStore.record_result`` one at a time for ``--single`` new keys (pass
   "new"), then a newer run for the same keys (pass "update", each an applied update).
   Baseline, interleaved key by key: a plain single-row INSERT / UPDATE-by-PK of the same row
   values into ``bench_plain_insert``, one transaction per row, on the same engine. p50/p99 ms.
2. Batched writes: ``StateStore.record_results`` in batches of ``--batch-size`` new keys,
   ``--rows`` per round (default 100,000 PostgreSQL, 50,000 SQLite), ``--rounds`` rounds of
   fresh keys, store and plain in alternating order. Baseline: the same rows, same batches, one
   transaction per batch, via ``conn.execute(table.insert(), rows)`` (Core executemany, which
   psycopg 3 pipelines; faster here than multi-VALUES or insertmanyvalues+RETURNING). Median
   states/s and median per-round time ratio store/plain. ``--analyze`` runs ANALYZE before each
   round, as autovacuum would; the table shows whether the server's autovacuum is on.

``bench_plain_insert`` has partition_state's columns and primary key and no other index (PG:
``LIKE partition_state INCLUDING DEFAULTS INCLUDING CONSTRAINTS``). Each result has its own
run id from ``new_run_id()``; keys are digit customer ids x 365 dates, query ``campaign``.
SQLite: a fresh file in a temp dir. PostgreSQL: a new uniquely named database on the server
at ``--pg-url`` (default $GRIDCAT_BENCH_PG_URL, else $GRIDCAT_TEST_PG_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/postgres), migrated with ``migrations.upgrade``
and dropped WITH (FORCE) at the end, even on error.

Run:  .venv/bin/python bench/state_store.py [--rows N] [--batch-size B] [--single N]
          [--rounds R] [--analyze] [--pg-url URL] [--skip-sqlite] [--skip-postgres] [--json]

PostgreSQL targets are printed as met / NOT met; a missed target is not an error (exit 0).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from itertools import count

import sqlalchemy as sa
from pg_scratch import DEFAULT_PG_URL, scratch_database

from gridcat_pipelines.run_ids import new_run_id
from gridcat_pipelines.state import migrations
from gridcat_pipelines.state.db import create_state_engine
from gridcat_pipelines.state.keys import PartitionKey
from gridcat_pipelines.state.models import ValidationResult
from gridcat_pipelines.state.store import StateStore
from gridcat_pipelines.state.tables import KEY_COLUMNS, partition_state

PLAIN = "bench_plain_insert"
_serial = count()


def new_keys(n: int) -> list[PartitionKey]:
    """``n`` never-used keys: 365 consecutive dates per customer id, query ``campaign``."""
    serials = [next(_serial) for _ in range(n)]
    return [
        PartitionKey("google_ads", str(1_000_000_000 + i // 365), "campaign", date(2023, 1, 1) + timedelta(i % 365))
        for i in serials
    ]


def results_for(keys: list[PartitionKey]) -> list[ValidationResult]:
    """A success result per key, each from its own new run."""
    return [
        ValidationResult(key=k, run_id=new_run_id(), status="success", schema_version="v1", record_count=n)
        for n, k in enumerate(keys)
    ]


def plain_rows(results: list[ValidationResult], version: int = 1) -> list[dict]:
    """The partition_state rows the store writes for these results (at ``version``)."""
    now = datetime.now(UTC)
    return [
        {
            **dict(zip(KEY_COLUMNS, r.key.as_tuple())),
            "status": r.status,
            "current_run_id": r.run_id,
            "schema_version": r.schema_version,
            "record_count": r.record_count,
            "updated_at": now,
            "error_message": None,
            "attempt_count": version,
            "tags": {},
            "version": version,
        }
        for r in results
    ]


def make_plain_table(engine: sa.Engine) -> sa.Table:
    table = partition_state.to_metadata(sa.MetaData(), name=PLAIN)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                f"CREATE TABLE {PLAIN} (LIKE partition_state INCLUDING DEFAULTS INCLUDING CONSTRAINTS,"
                f" PRIMARY KEY ({', '.join(KEY_COLUMNS)}))"
            )
        else:
            table.create(conn)  # same columns and primary key, no other index
    return table


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def pair(store: float, plain: float, ratio: float | None = None) -> dict:
    return {"store": store, "plain": plain, "ratio": store / plain if ratio is None else ratio}


def pctl_ms(seconds: list[float], q: int) -> float:
    return statistics.quantiles(seconds, n=100, method="inclusive")[q - 1] * 1000


def bench_single(store: StateStore, plain: sa.Table, n: int) -> dict:
    engine = store.engine
    update = plain.update().where(*[plain.c[c] == sa.bindparam(f"k_{c}") for c in KEY_COLUMNS])
    update = update.values({c: sa.bindparam(f"v_{c}") for c in plain.c.keys() if c not in KEY_COLUMNS})

    def plain_insert(row):
        with engine.begin() as conn:
            conn.execute(plain.insert(), row)

    def plain_update(row):
        with engine.begin() as conn:
            conn.execute(update, {(f"k_{c}" if c in KEY_COLUMNS else f"v_{c}"): v for c, v in row.items()})

    warm = results_for(new_keys(20))
    for r, row in zip(warm, plain_rows(warm)):  # warm the pool and the statement caches
        store.record_result(r)
        plain_insert(row)
    keys, out = new_keys(n), {}
    for version, name, plain_write in ((1, "new", plain_insert), (2, "update", plain_update)):
        results = results_for(keys)
        store_t, plain_t = [], []
        for r, row in zip(results, plain_rows(results, version)):
            store_t.append(timed(lambda: store.record_result(r)))
            plain_t.append(timed(lambda: plain_write(row)))
        for q in (50, 99):
            out[f"single {name} p{q} (ms)"] = pair(pctl_ms(store_t, q), pctl_ms(plain_t, q))
    return out


def bench_batched(store: StateStore, plain: sa.Table, args: argparse.Namespace, rows: int) -> dict:
    store_rates, plain_rates, ratios = [], [], []
    for rnd in range(args.rounds):
        if args.analyze:
            with store.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        batches = [results_for(new_keys(min(args.batch_size, rows - s))) for s in range(0, rows, args.batch_size)]
        plain_batches = [plain_rows(b) for b in batches]

        def run_store():
            for b in batches:
                store.record_results(b)

        def run_plain():
            for b in plain_batches:
                with store.engine.begin() as conn:
                    conn.execute(plain.insert(), b)  # Core executemany

        if rnd % 2:  # alternate the order so neither side always runs second
            plain_s, store_s = timed(run_plain), timed(run_store)
        else:
            store_s, plain_s = timed(run_store), timed(run_plain)
        store_rates.append(rows / store_s)
        plain_rates.append(rows / plain_s)
        ratios.append(store_s / plain_s)
        print(
            f"  round {rnd + 1}: store {store_rates[-1]:,.0f}/s  plain {plain_rates[-1]:,.0f}/s  ratio {ratios[-1]:.2f}",
            file=sys.stderr,
        )
    median = statistics.median
    return {"batched states/s": pair(median(store_rates), median(plain_rates), median(ratios))}


def run_dialect(url: str, args: argparse.Namespace, rows: int) -> dict:
    engine = create_state_engine(url)
    try:
        migrations.upgrade(engine)
        store, plain = StateStore(engine), make_plain_table(engine)
        print(f"{engine.dialect.name}: {args.single} single writes per pass ...", file=sys.stderr)
        figures = bench_single(store, plain, args.single)
        print(f"{engine.dialect.name}: batched, {rows} rows x {args.rounds} rounds ...", file=sys.stderr)
        figures.update(bench_batched(store, plain, args, rows))
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                figures["server autovacuum"] = conn.exec_driver_sql("SHOW autovacuum").scalar_one()
        figures["ANALYZE before rounds"] = "yes" if args.analyze else "no"
        return figures
    finally:
        engine.dispose()


def run_postgres(args: argparse.Namespace) -> dict:
    with scratch_database(args.pg_url, "gridcat_bench") as url:
        return run_dialect(url, args, args.rows or 100_000)


def run_sqlite(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="gridcat-bench-") as tmp:
        return run_dialect(f"sqlite:///{tmp}/state.db", args, args.rows or 50_000)


def targets(pg: dict) -> list[dict]:
    rate, ratio = pg["batched states/s"]["store"], pg["batched states/s"]["ratio"]
    new_p50, upd_p50 = pg["single new p50 (ms)"]["store"], pg["single update p50 (ms)"]["store"]
    checks = [
        ("batched states/s >= 20,000", rate, rate >= 20_000),
        ("batched time <= 3x plain", ratio, ratio <= 3.0),
        ("single p50 <= 2 ms (new keys)", new_p50, new_p50 <= 2.0),
        ("single p50 <= 2 ms (updates)", upd_p50, upd_p50 <= 2.0),
    ]
    return [{"target": t, "value": round(v, 3), "met": ok} for t, v, ok in checks]


def print_table(figures: dict[str, dict]) -> None:
    print(f"{'dialect':<11} {'metric':<24} {'store':>10} {'plain':>10} {'ratio':>6}")
    for dialect, metrics in figures.items():
        for metric, value in metrics.items():
            if isinstance(value, str):
                print(f"{dialect:<11} {metric:<24} {value:>10}")
            else:  # ratio: store cost / plain cost (for states/s, the median time ratio)
                fmt = "{:>10,.0f}" if metric.endswith("/s") else "{:>10.3f}"
                store, plain = fmt.format(value["store"]), fmt.format(value["plain"])
                print(f"{dialect:<11} {metric:<24} {store} {plain} {value['ratio']:>6.2f}")
    print("ratio = store time / plain time (single: per-percentile latency; batched: median per round)")
    if "postgresql" in figures:
        print("\nPostgreSQL targets:")
        for t in targets(figures["postgresql"]):
            print(f"  {t['target']:<30} {t['value']:>12,.3f}  {'met' if t['met'] else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help="rows per batched round (default 100000 PG, 50000 SQLite)")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--single", type=int, default=2000, help="keys per single-write pass (>= 2)")
    parser.add_argument("--rounds", type=int, default=3, help="batched rounds; medians are reported")
    parser.add_argument("--analyze", action="store_true", help="ANALYZE before each batched round")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so a kill still drops the PG database
    if args.single < 2 or args.batch_size < 1 or args.rounds < 1 or (args.rows or 1) < 1:
        parser.error("need --single >= 2 (percentiles need two samples) and --batch-size/--rounds/--rows >= 1")
    figures: dict[str, dict] = {}
    if not args.skip_postgres:
        figures["postgresql"] = run_postgres(args)
    if not args.skip_sqlite:
        figures["sqlite"] = run_sqlite(args)
    if args.json:
        extra = {"postgresql_targets": targets(figures["postgresql"])} if "postgresql" in figures else {}
        print(json.dumps({**figures, **extra}, indent=2))
    else:
        print_table(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
