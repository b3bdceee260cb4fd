"""Benchmark validating one raw run against reading it, and against per-row jsonschema.

Builds one partition of ``--rows`` rows (default 1,000,000) of a real feed from
``config/google_apis.yaml`` (``--feed``, default ``keyword_view``), generated vectorised
with numpy so that every rule passes, and writes it through the RawSink (one Parquet file +
metadata.json) into a temp dir. Then, in one run, each measured ``--reps`` times (median
reported, after one untimed warm-up so all read from the page cache):

(a) read:        ``pyarrow.parquet.read_table`` of the run's Parquet file (the floor);
(b) validation:  ``validate_run`` through the sink: metadata.json, ``verify_files`` (sizes,
                 sha256 of every byte, Parquet footers), read, then every rule of the feed
                 including the vectorised row_schema;
(c) per-row:     ``Draft202012Validator(row_schema, format_checker=FormatChecker())
                 .is_valid(row)`` over a ``--sample``-row slice (converted with
                 ``to_pylist``, dates to ISO strings; conversion included), extrapolated
                 linearly to ``--rows``. It checks only row_schema, none of the other rules,
                 so the ratio understates the gap.

Targets: validation / read <= 3x; per-row-jsonschema (extrapolated) / validation >= 100x.
Printed as met / NOT met; a missed target is not an error (exit 0).

Run:  .venv/bin/python bench/validation.py [--rows N] [--reps R] [--sample N] [--feed NAME] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import jsonschema
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gridcat_pipelines.feeds.loader import load_pipeline_config
from gridcat_pipelines.feeds.models import CustomerConfig, FeedConfig
from gridcat_pipelines.raw_sink import RawSink
from gridcat_pipelines.state.keys import PartitionKey
from gridcat_pipelines.validation.json_schema import compile_row_schema
from gridcat_pipelines.validation.validator import validate_run, validate_table

DAY = date(2026, 3, 10)
READ_TARGET = 3.0
JSONSCHEMA_TARGET = 100.0


def log(msg: str) -> None:
    """Progress on stderr (stdout carries only the figures)."""
    print(msg, file=sys.stderr, flush=True)


def synthetic_partition(feed: FeedConfig, customer: CustomerConfig, rows: int, seed: int = 0) -> pa.Table:
    """``rows`` valid rows of ``feed``, generated column by column from its config (vectorised).

    Ids look like Google Ads ids: large, sparse and in no particular order. Id columns draw
    from a pool of ``rows // 50`` entity ids, except the last integer primary key column,
    which holds distinct ids (so the key is unique). Enum columns draw from their enum,
    other bounded integers from their bounds, the currency column is the customer's, the
    date column the partition's, metrics satisfy clicks <= impressions, and nullable
    non-key columns that allow null are 5% null.
    """
    rng = np.random.default_rng(seed)
    props = feed.row_schema.get("properties", {})
    key_protected = set(feed.primary_key) | set(feed.rules.not_null)
    int_keys = [c for c in feed.primary_key if feed.column(c).type == "int64" and c != "customer_id"]
    unique_col = int_keys[-1] if int_keys else None
    # Distinct sparse ids in random order: an odd multiplier is a bijection modulo 2**40.
    distinct_ids = (rng.permutation(rows).astype(np.int64) * 2_654_435_761 + 17) % (1 << 40) + 1
    id_pool = distinct_ids[rng.permutation(rows)[: max(rows // 50, 1)]]
    impressions = rng.integers(1, 5_000, rows)
    clicks = rng.binomial(impressions, 0.04)
    special: dict[str, Any] = {
        "customer_id": np.full(rows, int(customer.customer_id)),
        "metrics_impressions": impressions,
        "metrics_clicks": clicks,
        "metrics_cost_micros": clicks * rng.integers(50_000, 3_000_000, rows),
    }
    arrays = []
    for col in feed.columns:
        prop = props.get(col.name, {}) if isinstance(props.get(col.name), dict) else {}
        enum = [m for m in prop.get("enum", []) if m is not None]
        if col.name in special:
            values: Any = special[col.name]
        elif col.name == unique_col:
            values = distinct_ids
        elif col.type == "int64" and col.name.endswith("_id"):
            values = id_pool[rng.integers(0, len(id_pool), rows)]
        elif col.type == "date32":
            values = np.full(rows, (DAY - date(1970, 1, 1)).days, dtype=np.int32)
        elif col.name == feed.rules.currency_column:
            values = np.full(rows, customer.currency, dtype=object)
        elif enum:
            values = np.asarray(enum, dtype=object)[rng.integers(0, len(enum), rows)]
        elif col.type == "int64":
            lo = int(prop.get("minimum", 0))
            hi = int(prop.get("maximum", lo + 1_000_000))
            values = rng.integers(lo, hi + 1, rows)
        elif col.type == "double":
            values = np.round(rng.random(rows) * 10, 3)
        elif col.type == "string":
            # "<word>_<number>" padded to minLength: fits maxLength and id-like patterns.
            shortest, longest = int(prop.get("minLength", 0)), int(prop.get("maxLength", 40))
            word = col.name.split("_")[-1]
            pool = np.asarray([f"{word}_{i}".ljust(shortest, "x")[:longest] for i in range(5_000)], dtype=object)
            values = pool[rng.integers(0, len(pool), rows)]
            if col.name in feed.primary_key and unique_col is None:  # no integer key: make this one unique
                digits = np.char.zfill(rng.permutation(rows).astype(str), max(shortest - len(word) - 1, 7))
                values = np.char.add(f"{word}_", digits).astype(object)
        elif col.type == "bool":
            values = rng.random(rows) < 0.5
        else:
            raise SystemExit(f"cannot generate column {col.name} of type {col.type}")
        mask = None
        if col.nullable and col.name not in key_protected and "null" in _types(prop):
            mask = rng.random(rows) < 0.05
        if col.type == "date32":
            arrays.append(pa.array(values, pa.int32()).cast(pa.date32()))
        else:
            arrays.append(pa.array(values, col.arrow_type, mask=mask))
    return pa.Table.from_arrays(arrays, schema=feed.arrow_schema())


def _types(prop: dict) -> list:
    t = prop.get("type", [])
    return t if isinstance(t, list) else [t]


def median_time(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    """Median wall time of ``reps`` calls (after one warm-up call) and the last result."""
    result = fn()
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def per_row_jsonschema(table: pa.Table, schema: dict) -> tuple[float, int]:
    """Seconds to validate ``table`` row by row with jsonschema (conversion included), and invalid rows."""
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    started = time.perf_counter()
    invalid = 0
    for row in table.to_pylist():
        row = {k: v.isoformat() if isinstance(v, date) else v for k, v in row.items()}
        invalid += not validator.is_valid(row)
    return time.perf_counter() - started, invalid


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build, write and measure the partition; the figures as a JSON-safe dict."""
    config = load_pipeline_config()
    if args.feed not in config.feeds:
        raise SystemExit(f"unknown feed {args.feed!r}; one of {', '.join(config.feeds)}")
    feed = config.feeds[args.feed]
    customer = next(iter(config.customers.values()))
    key = PartitionKey.parse(customer.customer_id, feed.name, DAY)

    log(f"generating {args.rows:,} rows of {feed.name} ...")
    started = time.perf_counter()
    table = synthetic_partition(feed, customer, args.rows)
    generate_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="gridcat-bench-") as root:
        sink = RawSink(root)
        metadata = sink.write_run(key, [table], schema_version=feed.schema_version, source_name="bench")
        path = f"{sink.run_path(key, metadata.run_id)}/{metadata.files[0].path}"
        file_bytes = sum(f.bytes for f in metadata.files)
        compiled = compile_row_schema(feed)
        log(f"wrote {file_bytes / 1e6:.1f} MB in {len(metadata.files)} file(s); measuring ({args.reps} reps) ...")

        read_s, read_table = median_time(lambda: pq.read_table(path), args.reps)
        validate_s, report = median_time(
            lambda: validate_run(sink, key, metadata.run_id, feed, customer, row_schema=compiled), args.reps
        )
        # Breakdown of one validation (for profiling): sink checks, read, rules.
        verify_s, _ = median_time(lambda: sink.verify_files(sink.read_metadata(key, metadata.run_id)), args.reps)
        sink_read_s, sink_table = median_time(lambda: sink.read_table(metadata), args.reps)
        rules_s, _ = median_time(
            lambda: validate_table(sink_table, metadata, feed, DAY, customer=customer, key=key, row_schema=compiled),
            args.reps,
        )

        sample = read_table.slice(0, min(args.sample, read_table.num_rows))
        per_row_s, invalid = per_row_jsonschema(sample, feed.row_schema)
        per_row_extrapolated_s = per_row_s * args.rows / max(sample.num_rows, 1)

    if not report.passed:
        log(f"WARNING: the generated partition does not pass: {report.error_message(detail=True)}")
    ratio_read = validate_s / read_s
    ratio_jsonschema = per_row_extrapolated_s / validate_s
    return {
        "feed": feed.name,
        "rows": args.rows,
        "columns": len(feed.columns),
        "file_mb": round(file_bytes / 1e6, 2),
        "reps": args.reps,
        "generate_s": round(generate_s, 3),
        "read_s": round(read_s, 4),
        "validation_s": round(validate_s, 4),
        "breakdown_s": {
            "metadata_and_verify_files": round(verify_s, 4),
            "sink_read_table": round(sink_read_s, 4),
            "rules": round(rules_s, 4),
        },
        "report_passed": report.passed,
        "rules": {r.rule: r.outcome for r in report.rules},
        "jsonschema_sample_rows": sample.num_rows,
        "jsonschema_sample_s": round(per_row_s, 4),
        "jsonschema_sample_invalid_rows": invalid,
        "jsonschema_extrapolated_s": round(per_row_extrapolated_s, 2),
        "ratio_validation_to_read": round(ratio_read, 2),
        "ratio_jsonschema_to_validation": round(ratio_jsonschema, 1),
        "targets": [
            {
                "target": f"validation / read <= {READ_TARGET:g}x",
                "value": round(ratio_read, 2),
                "met": ratio_read <= READ_TARGET,
            },
            {
                "target": f"per-row jsonschema / validation >= {JSONSCHEMA_TARGET:g}x",
                "value": round(ratio_jsonschema, 1),
                "met": ratio_jsonschema >= JSONSCHEMA_TARGET,
            },
        ],
    }


def print_table(fig: dict[str, Any]) -> None:
    """The figures as the human-readable table."""
    b = fig["breakdown_s"]
    print(
        f"feed {fig['feed']}: {fig['rows']:,} rows x {fig['columns']} columns, {fig['file_mb']} MB Parquet; "
        f"median of {fig['reps']} reps"
    )
    print(f"  (a) read Parquet (floor)                 {fig['read_s'] * 1000:10.1f} ms")
    print(
        f"  (b) full validation (validate_run)       {fig['validation_s'] * 1000:10.1f} ms   "
        f"[metadata+verify_files {b['metadata_and_verify_files'] * 1000:.1f} ms, read {b['sink_read_table'] * 1000:.1f} ms, "
        f"rules {b['rules'] * 1000:.1f} ms]"
    )
    print(
        f"  (c) per-row jsonschema, {fig['jsonschema_sample_rows']:,} rows        {fig['jsonschema_sample_s'] * 1000:10.1f} ms"
        f"   -> {fig['rows']:,} rows extrapolated: {fig['jsonschema_extrapolated_s']:.1f} s"
    )
    print(f"  report passed: {fig['report_passed']} ({', '.join(f'{k}={v}' for k, v in fig['rules'].items())})")
    print("targets:")
    for t in fig["targets"]:
        print(f"  {t['target']:<40} {t['value']:>8}x  {'met' if t['met'] else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print the figures (exit 0 even if a target is missed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the partition (default 1,000,000)")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions, median reported (>= 3)")
    parser.add_argument("--sample", type=int, default=10_000, help="rows validated per row with jsonschema")
    parser.add_argument("--feed", default="keyword_view", help="feed from config/google_apis.yaml")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.reps < 3 or args.sample < 1:
        parser.error("--rows and --sample must be >= 1, --reps >= 3")
    figures = run(args)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_table(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
