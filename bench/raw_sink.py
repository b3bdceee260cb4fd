"""Benchmark the raw sink on a local disk against bare Parquet I/O of the same table.

Builds an Ads-like table (``--rows``, default 1,000,000; 10 columns: a date, ids, a 50,000-
name string column, a 3-value status, int metrics, a nullable double, a currency), then per
round, in a fresh temp dir:

- ``write_run``: the table as ``--batch-rows`` batches (default 50,000) through
  ``RawSink.write_run`` (part files of ``--max-rows-per-file``, sha256, column stats, fsync,
  atomic metadata commit). Baseline: ``pq.write_table`` of the whole table to one file.
- ``read``: ``read_metadata`` + ``read_table``. Baseline: ``pq.read_table`` of that file.
- ``verify_files``: stat + sha256 (1 MiB chunks) + footer row count of every part file.

Prints median seconds per phase and the ratio to its baseline, and checks the round trip.

Run:  .venv/bin/python bench/raw_sink.py [--rows N] [--batch-rows B] [--max-rows-per-file F]
          [--rounds R]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gridcat_pipelines.raw_sink import RawSink
from gridcat_pipelines.state.keys import PartitionKey


def ads_table(rows: int, seed: int = 7) -> pa.Table:
    """An Ads-report-like table of ``rows`` rows."""
    rng = np.random.default_rng(seed)
    names = np.array([f"Campaign {i} - Brand / Search" for i in range(50_000)], dtype=object)
    status = np.array(["ENABLED", "PAUSED", "REMOVED"], dtype=object)
    impressions = rng.integers(0, 100_000, rows)
    clicks = (impressions * rng.random(rows) * 0.1).astype(np.int64)
    return pa.table(
        {
            "segments_date": pa.array(np.full(rows, np.datetime64("2026-11-01", "D"))).cast(pa.date32()),
            "customer_id": pa.array(np.full(rows, 1234567890, dtype=np.int64)),
            "campaign_id": pa.array(np.arange(rows, dtype=np.int64) + 10**10),
            "campaign_name": pa.array(names[rng.integers(0, len(names), rows)], pa.string()),
            "campaign_status": pa.array(status[rng.integers(0, 3, rows)], pa.string()),
            "metrics_impressions": pa.array(impressions),
            "metrics_clicks": pa.array(clicks),
            "metrics_cost_micros": pa.array(rng.integers(0, 10**9, rows)),
            "metrics_ctr": pa.array(clicks / np.maximum(impressions, 1), mask=impressions == 0),
            "customer_currency_code": pa.array(["USD"] * rows, pa.string()),
        }
    )


def one_round(table: pa.Table, batch_rows: int, max_rows_per_file: int) -> dict[str, float]:
    """Seconds per phase for one round in a fresh directory."""
    key = PartitionKey.parse("1234567890", "campaign", "2026-11-01")
    root = tempfile.mkdtemp(prefix="gridcat-bench-raw-")
    try:
        sink = RawSink(root)
        batches = table.to_batches(max_chunksize=batch_rows)
        t0 = time.perf_counter()
        meta = sink.write_run(key, iter(batches), schema_version="1", max_rows_per_file=max_rows_per_file)
        t1 = time.perf_counter()
        back = sink.read_table(sink.read_metadata(key, meta.run_id))
        t2 = time.perf_counter()
        problems = sink.verify_files(meta)
        t3 = time.perf_counter()
        assert back.equals(table), "round trip differs"
        assert not problems, problems
        plain = f"{root}/plain.parquet"
        t4 = time.perf_counter()
        pq.write_table(table, plain)
        t5 = time.perf_counter()
        pq.read_table(plain)
        t6 = time.perf_counter()
        return {
            "write_run": t1 - t0,
            "read": t2 - t1,
            "verify_files": t3 - t2,
            "plain_write": t5 - t4,
            "plain_read": t6 - t5,
            "files": len(meta.files),
            "mb": sum(f.bytes for f in meta.files) / 1e6,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    """Parse arguments, run the rounds, print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=50_000)
    parser.add_argument("--max-rows-per-file", type=int, default=250_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    table = ads_table(args.rows)
    rounds = [one_round(table, args.batch_rows, args.max_rows_per_file) for _ in range(args.rounds)]
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print(
        f"{args.rows:,} rows x {table.num_columns} columns, batches of {args.batch_rows:,}, "
        f"{int(med['files'])} part files, {med['mb']:.1f} MB; median of {args.rounds} rounds"
    )
    print(
        f"  write_run     {med['write_run']:6.2f}s   (bare pq.write_table {med['plain_write']:.2f}s, "
        f"x{med['write_run'] / med['plain_write']:.1f})"
    )
    print(
        f"  read          {med['read']:6.2f}s   (bare pq.read_table  {med['plain_read']:.2f}s, "
        f"x{med['read'] / med['plain_read']:.1f})"
    )
    print(f"  verify_files  {med['verify_files']:6.2f}s")


if __name__ == "__main__":
    main()
