"""Benchmark the Google Ads source: rows per second from a loopback SearchStream into a raw run,
against writing the same rows to Parquet from Arrow directly.

The server is the test suite's fake (gridcat_pipelines_tests/fake_google_ads.py): real gRPC
over TLS on 127.0.0.1, run in a child process (so it does not share this process's GIL; pass
``--in-process`` to keep it here), serving ``--rows`` rows of ``--feed`` (default
``keyword_view``, 1,000,000 rows) as pre-serialized ``SearchGoogleAdsStreamResponse`` messages
of ``--rows-per-response`` rows (10,000, as the API does). The client is the real
``GoogleAdsClient`` built by ``GoogleAdsApiSource`` (service-account credentials against a
loopback token endpoint), so each round measures: TLS gRPC transfer, parsing, mapping to
Arrow, and ``RawSink.write_run`` (Parquet part files, sha256, column stats, fsync, metadata
commit). A warm-up pull (client build, token, TLS handshake) is not counted.

Per round, in a fresh directory:

- ``source -> raw run``: ``pull_raw_run(GoogleAdsApiSource, RawSink, ...)``;
- ``arrow -> raw run``: the same rows, as an Arrow table, through ``RawSink.write_run``;
- ``arrow -> parquet``: ``pq.write_table`` of that table to one file (the baseline).

Prints the median seconds and rows/s of each, the ratio of the source to the baseline, and
checks that the raw run holds exactly the rows served. Goal: at least 100,000 rows/s for
``keyword_view`` on a 2-core machine.

Run:  .venv/bin/python bench/google_ads_source.py [--feed keyword_view] [--rows N]
          [--rows-per-response R] [--rounds K] [--in-process]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# bench/http.py would shadow the standard library's http (the fake token endpoint needs http.server)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from gridcat_pipelines.feeds.loader import load_pipeline_config  # noqa: E402
from gridcat_pipelines.feeds.models import FeedConfig  # noqa: E402
from gridcat_pipelines.ingest import partition_key, pull_raw_run  # noqa: E402
from gridcat_pipelines.raw_sink import RawSink  # noqa: E402
from gridcat_pipelines_tests import fake_google_ads as fake  # noqa: E402

DAY = date(2026, 2, 3)
WORDS = ["running shoes", "trail", "zapatillas", "günstig", "靴", "schuhe", "waterproof", "kids", "sale", "🏃"]


def ads_table(feed: FeedConfig, rows: int, customer_id: str, seed: int = 7) -> pa.Table:
    """``rows`` plausible rows of ``feed``: ids, 64-bit micros, enums, unicode text, some nulls."""
    from google.protobuf.descriptor import FieldDescriptor as FD

    from gridcat_pipelines.sources.google_ads_rows import stream_classes

    rng = np.random.default_rng(seed)
    row_desc = stream_classes(fake.DEFAULT_API_VERSION)[1].DESCRIPTOR.fields_by_name["results"].message_type
    columns = {}
    for col in feed.columns:
        field, desc = None, row_desc
        for step in col.field.split("."):
            field = desc.fields_by_name.get(step) or desc.fields_by_name[step + "_"]
            desc = field.message_type
        if col.field == "customer.id":
            values = pa.array(np.full(rows, int(customer_id)), pa.int64())
        elif col.type == "date32":
            values = pa.array([DAY] * rows, pa.date32())
        elif col.type == "string" and field.type == FD.TYPE_ENUM:
            names = [v.name for v in field.enum_type.values if v.number > 1]
            values = pa.array(np.array(names, dtype=object)[rng.integers(0, len(names), rows)], pa.string())
        elif col.type == "string":
            words = np.array(WORDS, dtype=object)
            if col.field.endswith("currency_code"):
                values = pa.array(["USD"] * rows, pa.string())
            else:
                picks = rng.integers(0, len(words), (rows, 2))
                values = pa.array([f"{words[a]} {words[b]} {i}" for i, (a, b) in enumerate(picks)], pa.string())
        elif col.type == "int64":
            high = 10**12 if "micros" in col.field or col.field.endswith("id") else 100_000
            values = pa.array(rng.integers(1, high, rows), pa.int64())
        elif col.type == "double":
            values = pa.array(np.round(rng.random(rows) * 100, 2), pa.float64())
        else:
            values = pa.array(rng.random(rows) < 0.5, pa.bool_())
        if col.nullable:
            values = pa.array(values.to_pylist(), values.type, mask=rng.random(rows) < 0.1)
        columns[col.name] = values
    return pa.Table.from_pydict(columns, schema=feed.arrow_schema())


def serve(tls, feed_name: str, rows: int, rows_per_response: int, customer_id: str, conn) -> None:
    """The child process: serve the table as pre-serialized responses until told to stop."""
    config = load_pipeline_config()
    feed = config.feeds[feed_name]
    table = ads_table(feed, rows, customer_id)
    payload = [r.SerializeToString() for r in fake.responses_for(feed, table, rows_per_response=rows_per_response)]
    with fake.FakeGoogleAdsServer(tls, workers=2) as server:
        server.plan(customer_id, feed.query_for(DAY), payload)
        conn.send(server.endpoint)
        conn.recv()  # stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feed", default="keyword_view")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rows-per-response", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-process", action="store_true", help="run the server in this process")
    args = parser.parse_args()

    from gridcat_pipelines.sources.google_ads import GoogleAdsApiSource

    config = load_pipeline_config()
    feed = config.feeds[args.feed]
    customer = next(iter(config.customers.values()))
    tls = fake.shared_tls()
    os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = tls.ca_path  # this script's process only
    expected = ads_table(feed, args.rows, customer.customer_id)

    account = fake.ServiceAccount()
    parent_conn, child_conn = mp.Pipe()
    child = None
    in_process_server = None
    with tempfile.TemporaryDirectory() as tmp, fake.FakeTokenServer(account) as token:
        if args.in_process:
            in_process_server = fake.FakeGoogleAdsServer(tls).__enter__()
            responses = fake.responses_for(feed, expected, rows_per_response=args.rows_per_response)
            in_process_server.plan(
                customer.customer_id, feed.query_for(DAY), [r.SerializeToString() for r in responses]
            )
            endpoint = in_process_server.endpoint
        else:
            context = mp.get_context("spawn")
            child = context.Process(
                target=serve,
                args=(tls, args.feed, args.rows, args.rows_per_response, customer.customer_id, child_conn),
            )
            child.start()
            endpoint = parent_conn.recv()
        try:
            key_file = account.write_key_file(Path(tmp) / "key.json", token.token_uri)
            source = GoogleAdsApiSource(
                settings={"developer_token": fake.DEVELOPER_TOKEN, "json_key_file_path": key_file, "endpoint": endpoint}
            )
            warm = time.perf_counter()
            pull_raw_run(source, RawSink(str(Path(tmp) / "warmup")), feed, customer, DAY)
            warm = time.perf_counter() - warm
            timings: dict[str, list[float]] = {"source": [], "arrow_run": [], "parquet": []}
            for i in range(args.rounds):
                root = Path(tmp) / f"round{i}"
                sink = RawSink(str(root / "raw"))
                started = time.perf_counter()
                meta = pull_raw_run(source, sink, feed, customer, DAY)
                timings["source"].append(time.perf_counter() - started)
                got = sink.read_table(meta)
                if not got.equals(expected):
                    raise SystemExit("the raw run does not hold exactly the rows served")
                arrow_sink = RawSink(str(root / "arrow"))
                started = time.perf_counter()
                arrow_sink.write_run(
                    partition_key(feed, customer, DAY),
                    expected.to_batches(max_chunksize=args.rows_per_response),
                    schema_version=feed.schema_version,
                    schema=feed.arrow_schema(),
                )
                timings["arrow_run"].append(time.perf_counter() - started)
                started = time.perf_counter()
                pq.write_table(expected, root / "direct.parquet")
                timings["parquet"].append(time.perf_counter() - started)
        finally:
            if child is not None:
                parent_conn.send("stop")
                child.join(10)
            if in_process_server is not None:
                in_process_server.__exit__(None, None, None)

    med = {k: statistics.median(v) for k, v in timings.items()}
    rate = {k: args.rows / v for k, v in med.items()}
    where = "in this process" if args.in_process else "in a child process"
    print(
        f"{args.rows:,} rows of {args.feed} ({len(feed.columns)} columns), {args.rows_per_response:,} rows per "
        f"response, server {where}; median of {args.rounds} rounds (warm-up pull {warm:.2f}s)"
    )
    print(f"  SearchStream -> raw run   {med['source']:.2f}s  {rate['source']:>12,.0f} rows/s")
    print(
        f"  Arrow -> raw run          {med['arrow_run']:.2f}s  {rate['arrow_run']:>12,.0f} rows/s"
        f"  (x{med['source'] / med['arrow_run']:.1f} of it)"
    )
    print(
        f"  Arrow -> Parquet (base)   {med['parquet']:.2f}s  {rate['parquet']:>12,.0f} rows/s"
        f"  (source is x{med['source'] / med['parquet']:.1f} of it)"
    )
    verdict = "meets" if rate["source"] >= 100_000 else "MISSES"
    print(f"  goal 100,000 rows/s for keyword_view: {verdict} ({rate['source']:,.0f} rows/s)")


if __name__ == "__main__":
    main()
