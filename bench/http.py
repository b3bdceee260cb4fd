"""Benchmark the API (``gridcat serve --grpc-port``) on PostgreSQL at 16 concurrent clients.

Creates its own database on ``--pg-url`` (default $GRIDCAT_BENCH_PG_URL, else
$GRIDCAT_TEST_PG_URL, else postgresql+psycopg://postgres@127.0.0.1:5432/postgres), migrates it,
fills ``partition_state`` with ``--rows`` states (tags env of 5 values, team of 1000), promotes
and backfills ``env`` and ``team``, starts ``gridcat serve`` in its own process (access log
off) and drives it from this process with ``--clients`` keep-alive HTTP/1.1 connections on one
asyncio loop, for ``--seconds`` per round, ``--rounds`` rounds:

1. ``GetState`` of random existing keys in each wire format: Connect unary JSON and Connect
   unary binary protobuf (``application/proto``), both over ``--clients`` HTTP/1.1 keep-alive
   connections, and gRPC (grpcio's asyncio client, ``--clients`` calls in flight on one HTTP/2
   channel to the gRPC port);
2. ``ListStates`` with two facet filters (env, team), page 20, in JSON.

Baseline, measured in the same run: the same calls to the same services in process
(``StateStore.get`` / ``StateStore.list_states``) from ``--clients`` threads. Printed:
requests/s, p50 and p99 per round and their medians, the server process's CPU per request
(from ``/proc``; the load generators differ in their own cost, the gRPC client most), the ratio
to in-process (p50 and throughput), binary / JSON, any non-200 answer (a gRPC status other than OK counts), and the
targets (GetState >= 800 requests/s and p99 <= 25 ms in every wire format; binary not slower
than JSON) as met / NOT met. The database is dropped WITH (FORCE) at the end, even on error.

Run:  .venv/bin/python bench/http.py [--rows 100000] [--clients 16] [--seconds 5] [--rounds 3]
          [--pg-url URL] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pg_scratch import DEFAULT_PG_URL, scratch_database  # noqa: E402

from gridcat_pipelines.api.gen.gridapi.v1 import state_service_pb2  # noqa: E402
from gridcat_pipelines.state import PartitionKey, StateStore  # noqa: E402
from gridcat_pipelines.tag_facets.service import FacetService  # noqa: E402

ENVS = ["prod", "staging", "dev", "qa", "sandbox"]
TOKEN = "bench-admin-token"
GET_PATH = "/gridapi.v1.StateService/GetState"
LIST_PATH = "/gridapi.v1.StateService/ListStates"


def fill(engine: sa.Engine, rows: int) -> None:
    """``rows`` states in one INSERT ... SELECT, keys as ``key_for`` builds them."""
    sql = f"""
    INSERT INTO partition_state (source, customer_id, query_name, logical_date, status,
        current_run_id, schema_version, record_count, updated_at, error_message, attempt_count, tags, version)
    SELECT 'google_ads', (1000000 + (i / 100))::text, 'campaign', DATE '2025-01-01' + (i % 100), 'success',
           NULL, '1', i % 5000, now(), NULL, 1,
           jsonb_build_object('env', (ARRAY{ENVS!r})[1 + (h % 5)], 'team', 't' || ((h / 7) % 1000)), 1
    FROM (SELECT i, abs(hashtext(i::text)) AS h FROM generate_series(0, {rows - 1}) AS g(i)) s
    """
    with engine.begin() as conn:
        conn.execute(sa.text(sql))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE partition_state")


def key_for(i: int) -> dict:
    """The GetState message of the ``i``-th filled state."""
    day = date(2025, 1, 1) + timedelta(days=i % 100)
    return {"customer_id": str(1_000_000 + i // 100), "query_name": "campaign", "logical_date": day.isoformat()}


def list_message(rng: random.Random) -> dict:
    """A two-facet-filter ListStates request."""
    return {
        "filters": [
            {"key": "env", "op": "EQ", "value": {"stringValue": rng.choice(ENVS)}},
            {"key": "team", "op": "EQ", "value": {"stringValue": f"t{rng.randrange(1000)}"}},
        ],
        "page_size": 20,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, home: Path) -> tuple[subprocess.Popen, int, int]:
    """``gridcat serve --grpc-port`` on free ports, once ``/healthz`` answers."""
    port, grpc_port = free_port(), free_port()
    env = {**os.environ, "GRIDCAT_DB_URL": url, "GRIDCAT_HOME": str(home), "GRIDCAT_API_ADMIN_TOKENS": TOKEN}
    command = ["serve", "--port", str(port), "--grpc-port", str(grpc_port), "--log-level", "warning"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridcat_pipelines.cli.main", *command],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gridcat serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc, port, grpc_port
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("gridcat serve did not become healthy")


JSON = "application/json"
PROTO = "application/proto"


async def _client(
    port: int, path: str, bodies, deadline: float, latencies: list, statuses: Counter, content_type: str
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: "
    ).encode()
    try:
        while time.perf_counter() < deadline:
            body = next(bodies)
            started = time.perf_counter()
            writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
            header = await reader.readuntil(b"\r\n\r\n")
            length = int(
                next(
                    line.split(b":", 1)[1]
                    for line in header.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
            )
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[int(header[9:12])] += 1
    finally:
        writer.close()


def http_round(
    port: int, path: str, make_body, clients: int, seconds: float, content_type: str = JSON, encode=None
) -> dict:
    """One timed round of ``clients`` connections; requests/s, p50/p99 ms, statuses. ``encode``
    turns a message into the body (default: JSON)."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    encode = encode or (lambda message: json.dumps(message).encode())

    def bodies(seed: int):
        rng = random.Random(seed)
        while True:
            yield encode(make_body(rng))

    async def run() -> float:
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(
            *[_client(port, path, bodies(n), deadline, latencies, statuses, content_type) for n in range(clients)]
        )
        return time.perf_counter() - started

    elapsed = asyncio.run(run())
    return summarize(latencies, elapsed, statuses)


def proto_body(message: dict) -> bytes:
    """A GetState message in binary protobuf."""
    return state_service_pb2.GetStateRequest(**message).SerializeToString()


def grpc_round(grpc_port: int, make_body, clients: int, seconds: float) -> dict:
    """One timed round of ``clients`` concurrent GetState calls on one grpcio asyncio channel."""
    import grpc

    latencies: list[float] = []
    statuses: Counter = Counter()
    metadata = (("authorization", f"Bearer {TOKEN}"),)

    async def caller(call, seed: int, deadline: float) -> None:
        rng = random.Random(seed)
        while time.perf_counter() < deadline:
            request = proto_body(make_body(rng))
            started = time.perf_counter()
            try:
                await call(request, metadata=metadata, timeout=30)
                statuses[200] += 1
            except grpc.aio.AioRpcError as exc:
                statuses[exc.code().name] += 1
            latencies.append(time.perf_counter() - started)

    async def run() -> float:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            # bytes in, bytes out: the client's own protobuf work stays out of the figure
            call = channel.unary_unary("/gridapi.v1.StateService/GetState")
            deadline = time.perf_counter() + seconds
            started = time.perf_counter()
            await asyncio.gather(*[caller(call, n, deadline) for n in range(clients)])
            return time.perf_counter() - started

    elapsed = asyncio.run(run())
    return summarize(latencies, elapsed, statuses)


def inproc_round(call, make_arg, clients: int, seconds: float) -> dict:
    """The same service calls in this process from ``clients`` threads."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        mine = []
        while time.perf_counter() < deadline:
            arg = make_arg(rng)
            t = time.perf_counter()
            call(arg)
            mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summarize(latencies, time.perf_counter() - started, Counter({200: len(latencies)}))


def summarize(latencies: list[float], elapsed: float, statuses: Counter) -> dict:
    ordered = sorted(latencies)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {
        "requests": len(ordered),
        "rps": len(ordered) / elapsed,
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "non_200": sum(n for s, n in statuses.items() if s != 200),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def with_server_cpu(pid: int, measure) -> dict:
    """``measure()``'s figures plus the server process's CPU per request (microseconds)."""
    before = cpu_seconds(pid)
    figures = measure()
    figures["server_cpu_us"] = (cpu_seconds(pid) - before) / max(figures["requests"], 1) * 1e6
    return figures


def median_of(rounds: list[dict], field: str) -> float:
    return statistics.median(r[field] for r in rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args()
    with scratch_database(args.pg_url, "gridcat_bench_http") as url:
        return run(args, url)


def run(args: argparse.Namespace, url: str) -> int:
    """Fill, serve, measure and print (see the module docstring)."""
    store = proc = None
    try:
        store = StateStore.open(url, upgrade=True)
        fill(store.engine, args.rows)
        facets = FacetService(store)
        for key in ("env", "team"):
            facets.run_backfill(facets.promote(key)["job_id"])
        print(
            f"{args.rows:,} states, facets env and team ENABLED; {args.clients} clients, "
            f"{args.rounds} rounds of {args.seconds:.0f} s; CPUs: {os.cpu_count()}"
        )
        home = Path(os.environ.get("TMPDIR", "/tmp")) / sa.engine.make_url(url).database
        proc, port, grpc_port = start_server(url, home)

        get_body = lambda rng: key_for(rng.randrange(args.rows))  # noqa: E731
        http_round(port, GET_PATH, get_body, args.clients, 1.0)  # warm-up
        http_round(port, GET_PATH, get_body, args.clients, 1.0, PROTO, proto_body)
        grpc_round(grpc_port, get_body, args.clients, 1.0)
        http_round(port, LIST_PATH, list_message, args.clients, 1.0)

        def get_call(msg: dict) -> None:
            store.get(PartitionKey.parse(msg["customer_id"], msg["query_name"], msg["logical_date"]))

        def list_call(msg: dict) -> None:
            store.list_states(filters=msg["filters"], page_size=20)

        results: dict[str, dict[str, list[dict]]] = {
            "GetState": {"json": [], "binary": [], "grpc": [], "inproc": []},
            "ListStates(2 facet filters)": {"json": [], "inproc": []},
        }
        for _ in range(args.rounds):  # alternate the wire formats and in-process within each round
            get = results["GetState"]
            pid, n, secs = proc.pid, args.clients, args.seconds
            get["json"].append(with_server_cpu(pid, lambda: http_round(port, GET_PATH, get_body, n, secs)))
            get["binary"].append(
                with_server_cpu(pid, lambda: http_round(port, GET_PATH, get_body, n, secs, PROTO, proto_body))
            )
            get["grpc"].append(with_server_cpu(pid, lambda: grpc_round(grpc_port, get_body, n, secs)))
            get["inproc"].append(inproc_round(get_call, get_body, args.clients, args.seconds))
            results["ListStates(2 facet filters)"]["json"].append(
                http_round(port, LIST_PATH, list_message, args.clients, args.seconds)
            )
            results["ListStates(2 facet filters)"]["inproc"].append(
                inproc_round(list_call, list_message, args.clients, args.seconds)
            )

        summary = {}
        print(
            f"\n{'operation':<30}{'path':<10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-200':>9}"
            f"{'srv CPU us':>12}   per round req/s"
        )
        for op, by_path in results.items():
            for path, rounds in by_path.items():
                med = {f: median_of(rounds, f) for f in ("rps", "p50_ms", "p99_ms")}
                if "server_cpu_us" in rounds[0]:
                    med["server_cpu_us"] = median_of(rounds, "server_cpu_us")
                bad = sum(r["non_200"] for r in rounds)
                summary[f"{op}/{path}"] = {**med, "non_200": bad}
                per_round = ", ".join(f"{r['rps']:.0f}" for r in rounds)
                cpu = f"{med['server_cpu_us']:>12.0f}" if "server_cpu_us" in med else f"{'':>12}"
                print(
                    f"{op:<30}{path:<10}{med['rps']:>9.0f}{med['p50_ms']:>9.2f}{med['p99_ms']:>9.2f}{bad:>9}{cpu}"
                    f"   {per_round}"
                )
            i = summary[f"{op}/inproc"]
            for path in by_path:
                if path != "inproc":
                    h = summary[f"{op}/{path}"]
                    print(
                        f"{'':<30}{path} / in-process: p50 {h['p50_ms'] / i['p50_ms']:.2f}x, "
                        f"throughput {h['rps'] / i['rps']:.2f}x"
                    )
        print()
        for path in ("json", "binary", "grpc"):
            get = summary[f"GetState/{path}"]
            print(
                f"GetState {path:<7} at {args.clients} clients: {get['rps']:.0f} req/s (target >= 800: "
                f"{'met' if get['rps'] >= 800 else 'NOT met'}), p99 {get['p99_ms']:.1f} ms (target <= 25 ms: "
                f"{'met' if get['p99_ms'] <= 25 else 'NOT met'})"
            )
        js, binary = summary["GetState/json"], summary["GetState/binary"]
        grpc_figures = summary["GetState/grpc"]
        print(
            f"server CPU per GetState: JSON {js['server_cpu_us']:.0f} us, binary {binary['server_cpu_us']:.0f} us "
            f"({binary['server_cpu_us'] / js['server_cpu_us']:.2f}x), gRPC {grpc_figures['server_cpu_us']:.0f} us "
            f"({grpc_figures['server_cpu_us'] / js['server_cpu_us']:.2f}x)"
        )
        print(
            f"binary / JSON: throughput {binary['rps'] / js['rps']:.2f}x, p99 {binary['p99_ms'] / js['p99_ms']:.2f}x "
            f"(binary not slower: {'met' if binary['rps'] >= js['rps'] else 'NOT met'}); "
            f"non-200 answers: {sum(v['non_200'] for k, v in summary.items() if not k.endswith('/inproc'))}"
        )
        if args.json:
            print(json.dumps(summary))
        return 0
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        if store is not None:
            store.close()


if __name__ == "__main__":
    sys.exit(main())
