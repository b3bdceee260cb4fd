"""Chaos bench: the gate's promise on PostgreSQL under concurrent pulls, re-points, loads,
retention and leases, with faults injected; afterwards reconcile and check every invariant.

For ``--seconds``, ``--workers`` OS processes (multiprocessing ``spawn``) each loop over random
operations (own RNG, seeded from ``--seed`` and the worker's index) on ``--partitions``
partitions (customers x feeds ``campaign``/``ad_group`` x 3 days in the past):

- pull: write a raw run, then record ``success``, or (fault) ``failed`` "injected fault";
- crashed pull (fault): the batches raise mid-write, leaving an incomplete run and no result;
- re-point: ``set_authoritative`` to a random run with a recorded result at the version just
  read (``FAILED_PRECONDITION``, e.g. a run retention deleted or a version that moved, and
  ``NOT_FOUND`` are expected outcomes and counted);
- load: ``load_partition`` with leases, of the authoritative run or of a plan read a moment
  earlier (as the gate does); in a fraction of them the ``before_commit`` hook raises
  ``OSError`` (fault: a transient warehouse error);
- SIGKILLed load (fault): every 1-3 s a worker starts a short-lived child process that loads a
  ``success`` partition and SIGKILLs itself in ``before_commit``, between staging and the
  fenced commit (its lease is left to expire);
- retention: ``apply_retention(older_than_days=0)``;
- lease: begin a lease, sleep a little, check the pinned run is still in the raw sink and not
  tombstoned while the lease is live, end it.

Then the workers stop, reconcile runs (``find_stale`` + ``load_partition`` of each, in this
process) until nothing is stale, and the invariants are checked:

1. every ``success`` partition's slice holds its authoritative run at its state version, every
   row's ``run_id`` is that run and the row count is the state's;
2. every ``failed`` partition that had a slice loaded keeps one, of a version no lower than
   the last load that committed, and that slice is a run the state had as ``success`` at that
   version (in fact any slice anywhere must be such a run);
3. every partition's authoritative run is still in the raw sink; no tombstoned run is
   authoritative; no run was tombstoned while a live lease pinned it (checked live by the
   lease operation, and afterwards from ``raw_run_tombstone`` against the lease tables, with a
   ``PIN_MARGIN_S`` slack for the clocks the two sides read before their transactions);
4. the change feed is ``1..last_change_seq`` with no gap, and each partition's changes carry
   versions ``1..version`` in feed order, the last one its current run.

The state database (and, with ``--warehouse postgres``, the warehouse database) is a scratch
database on ``--pg-url`` (default $GRIDCAT_BENCH_PG_URL, else $GRIDCAT_TEST_PG_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/postgres), dropped WITH (FORCE) at the end; the
raw sink (and the Parquet warehouse) live in a temporary directory. Printed: operations by
kind, outcomes, faults injected, unexpected errors (not invariant violations, but shown), what
was checked and the violations (must be 0; exit 1 otherwise).

Run:  .venv/bin/python bench/chaos.py [--seconds 30] [--workers 4] [--partitions 12] [--seed N]
          [--warehouse postgres|parquet] [--pg-url URL] [--json]
Longer: .venv/bin/python bench/chaos.py --seconds 600 --workers 8
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import queue
import random
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pg_scratch import DEFAULT_PG_URL, scratch_database

from gridcat_pipelines.errors import FAILED_PRECONDITION, NOT_FOUND, GridcatError
from gridcat_pipelines.leases.store import ACTIVE, LeaseStore
from gridcat_pipelines.leases.tables import run_lease, run_lease_pin
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.retention import apply_retention
from gridcat_pipelines.run_ids import new_run_id
from gridcat_pipelines.state import PartitionKey, StateStore, ValidationResult
from gridcat_pipelines.state.tables import KEY_COLUMNS, raw_run_tombstone
from gridcat_pipelines.warehouse.loader import LOADED, load_partition
from gridcat_pipelines.warehouse.parquet_target import ParquetWarehouse
from gridcat_pipelines.warehouse.postgres_target import PostgresWarehouse
from gridcat_pipelines.warehouse.reconcile import find_stale

SOURCE = "google_ads"
FEEDS = ("campaign", "ad_group")
DAYS = 3  # per customer and feed, ending two days ago
# operation -> weight of the random choice (SIGKILLed loads run on a timer, see _Worker.run)
OPS = {"pull": 32, "crashed_pull": 3, "repoint": 10, "load": 32, "retention": 5, "lease": 8}
P_FAILED_PULL = 0.25  # of pulls: record "failed" (injected fault)
P_TRANSIENT = 0.2  # of loads: before_commit raises OSError (injected fault)
P_STALE_PLAN = 0.25  # of loads: load the run and version read a moment earlier
KILL_EVERY_S = (1.0, 3.0)  # a worker starts a SIGKILLed load this often (uniform)
KILLED_LEASE_TTL_S = 5  # the killed loader's lease expires this long after its last renewal
LEASE_TTL_S = 30
PIN_MARGIN_S = 2.0
STARTUP_TIMEOUT_S = 180
MAX_RECONCILE_ROUNDS = 5
FAULT_KINDS = ("failed_pulls", "crashed_pulls", "transient_load_errors", "sigkilled_loads")
INJECTED = "injected transient load error"
EXIT_SKIPPED, EXIT_NO_SUCCESS, EXIT_ERROR = 0, 2, 3


# ------------------------------------------------------------------ shared helpers


def partition_keys(n: int, today: date | None = None) -> list[PartitionKey]:
    """``n`` keys: customers x FEEDS x DAYS days ending two days before ``today`` (UTC)."""
    today = today or datetime.now(UTC).date()
    keys = []
    customer = 0
    while len(keys) < n:
        for feed in FEEDS:
            for d in range(DAYS):
                keys.append(PartitionKey(SOURCE, str(7_700_000_001 + customer), feed, today - timedelta(days=2 + d)))
        customer += 1
    return sorted(keys[:n])


def _key_to_json(key: PartitionKey) -> list[str]:
    return [key.customer_id, key.query_name, key.logical_date.isoformat()]


def _key_from_json(data: list[str]) -> PartitionKey:
    return PartitionKey(SOURCE, data[0], data[1], date.fromisoformat(data[2]))


def _open_target(cfg: dict[str, Any]):
    if cfg["warehouse"] == "parquet":
        return ParquetWarehouse(cfg["warehouse_root"])
    return PostgresWarehouse(cfg["warehouse_url"])


def _batch(rows: int, rng: random.Random, label: str) -> pa.RecordBatch:
    return pa.record_batch(
        {
            "row": pa.array(range(rows), pa.int64()),
            "value": pa.array([rng.random() for _ in range(rows)], pa.float64()),
            "label": pa.array([label] * rows, pa.string()),
        }
    )


def _short(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}: {text}"[:400]


# ------------------------------------------------------------------ the killed loader


def _killed_load(cfg: dict[str, Any], seed: int) -> None:
    """Child process: load a ``success`` partition and SIGKILL itself between staging and the
    fenced commit. Exit 0: skipped (the state moved first); 2: no success partition; 3: error."""
    try:
        rng = random.Random(seed)
        store = StateStore.open(cfg["state_url"])
        keys = [_key_from_json(k) for k in cfg["keys"]]
        ready = [k for k, s in store.get_many(keys).items() if s.status == "success"]
        if not ready:
            os._exit(EXIT_NO_SUCCESS)

        def die() -> None:
            os.kill(os.getpid(), signal.SIGKILL)

        load_partition(
            store,
            RawSink(cfg["raw_root"]),
            _open_target(cfg),
            rng.choice(ready),
            leases=LeaseStore(store),
            lease_ttl_seconds=KILLED_LEASE_TTL_S,
            before_commit=die,
        )
    except Exception as exc:  # noqa: BLE001 - reported by the exit code (and stderr)
        print(f"chaos killed-load child: {_short(exc)}", file=sys.stderr, flush=True)
        os._exit(EXIT_ERROR)
    os._exit(EXIT_SKIPPED)


# ------------------------------------------------------------------ a worker


class _Worker:
    """One worker process's loop of random operations and what it saw."""

    def __init__(self, cfg: dict[str, Any], index: int):
        self.cfg, self.index = cfg, index
        self.rng = random.Random(f"{cfg['seed']}/{index}")
        self.store = StateStore.open(cfg["state_url"])
        self.leases = LeaseStore(self.store)
        self.sink = RawSink(cfg["raw_root"])
        self.warehouse = _open_target(cfg)
        self.keys = [_key_from_json(k) for k in cfg["keys"]]
        self.ops: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.error_samples: list[str] = []
        self.loads: list[tuple[list[str], str, int]] = []
        self.violations: list[str] = []
        self._child: Any = None
        self._next_kill = 0.0

    def run(self, seconds: float) -> None:
        start = time.monotonic()
        deadline = start + seconds
        self._next_kill = start + self.rng.uniform(0.2, 1.0)
        names, weights = list(OPS), list(OPS.values())
        while time.monotonic() < deadline:
            self._reap()
            now = time.monotonic()
            if self._child is None and now >= self._next_kill and now + 1.0 < deadline:
                self._start_killed_load()
                continue
            op = self.rng.choices(names, weights)[0]
            self.ops[op] += 1
            try:
                getattr(self, f"_op_{op}")()
            except Exception as exc:  # noqa: BLE001 - counted and shown; the invariants decide
                self._error(op, exc)
        self._reap(wait=True)
        self.store.close()

    def report(self) -> dict[str, Any]:
        return {
            "ops": dict(self.ops),
            "outcomes": dict(self.outcomes),
            "faults": dict(self.faults),
            "errors": dict(self.errors),
            "error_samples": self.error_samples,
            "loads": self.loads,
            "violations": self.violations,
        }

    def _error(self, op: str, exc: BaseException) -> None:
        self.errors[f"{op}: {type(exc).__name__}{':' + exc.code if isinstance(exc, GridcatError) else ''}"] += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"worker {self.index} {op}: {_short(exc)}")

    # -------------------------------------------------------------- operations

    def _op_pull(self) -> None:
        key = self.rng.choice(self.keys)
        rows = self.rng.randint(1, 25)
        meta = self.sink.write_run(key, [_batch(rows, self.rng, f"w{self.index}")], schema_version="1")
        if self.rng.random() < P_FAILED_PULL:
            result = ValidationResult(key, meta.run_id, "failed", "1", rows, "injected fault: validation failed")
            self.faults["failed_pulls"] += 1
        else:
            result = ValidationResult(key, meta.run_id, "success", "1", rows)
        outcome = self.store.record_result(result)
        self.outcomes[f"pull {result.status}: {outcome.outcome}"] += 1

    def _op_crashed_pull(self) -> None:
        key = self.rng.choice(self.keys)
        first = _batch(self.rng.randint(1, 25), self.rng, f"w{self.index}")

        def batches():
            yield first
            raise RuntimeError("injected crash mid-pull")

        try:
            self.sink.write_run(key, batches(), schema_version="1")
        except RuntimeError as exc:
            if str(exc) != "injected crash mid-pull":
                raise
            self.faults["crashed_pulls"] += 1
            return
        raise AssertionError("a crashed pull committed its run")

    def _op_repoint(self) -> None:
        key = self.rng.choice(self.keys)
        state = self.store.get(key)
        runs = sorted({h.run_id for h in self.store.history(key)} - {state.current_run_id})
        on_disk = sorted(set(runs) & {r.run_id for r in self.sink.list_runs(key)})
        if on_disk and self.rng.random() < 0.7:  # mostly runs retention left (else most are refused)
            runs = on_disk
        run = self.rng.choice(runs) if runs else new_run_id()  # a run never recorded: NOT_FOUND
        try:
            self.store.set_authoritative(key, run, state.version)
            self.outcomes["repoint: ok"] += 1
        except GridcatError as exc:
            if exc.code == FAILED_PRECONDITION:
                self.outcomes[
                    "repoint: refused, run deleted by retention"
                    if "retention" in exc.message
                    else "repoint: refused, version moved"
                ] += 1
            elif exc.code == NOT_FOUND:
                self.outcomes["repoint: not found"] += 1
            else:
                raise

    def _op_load(self) -> None:
        key = self.rng.choice(self.keys)
        inject = self.rng.random() < P_TRANSIENT
        run_id = version = None
        if self.rng.random() < P_STALE_PLAN:
            plan = self.store.get(key)
            run_id, version = plan.current_run_id, plan.version
            time.sleep(self.rng.uniform(0, 0.05))

        def before_commit() -> None:
            if inject:
                self.faults["transient_load_errors"] += 1
                raise OSError(INJECTED)

        try:
            outcome = load_partition(
                self.store,
                self.sink,
                self.warehouse,
                key,
                run_id,
                version=version,
                leases=self.leases,
                before_commit=before_commit,
            )
        except OSError as exc:
            if str(exc) != INJECTED:
                raise
            self.outcomes["load: failed (injected)"] += 1
            return
        self.outcomes[f"load: {outcome.status}"] += 1
        if outcome.status == LOADED:
            self.loads.append((_key_to_json(key), outcome.run_id, outcome.state_version))

    def _op_retention(self) -> None:
        report = apply_retention(self.store, self.sink, self.leases, older_than_days=0)
        self.outcomes["retention: runs deleted"] += len(report.runs)
        self.outcomes["retention: kept pinned"] += report.kept_pinned

    def _op_lease(self) -> None:
        key = self.rng.choice(self.keys)
        try:
            lease = self.leases.begin([key], ttl_seconds=LEASE_TTL_S, holder=f"chaos-worker-{self.index}")
        except GridcatError as exc:
            if exc.code != FAILED_PRECONDITION:
                raise
            self.outcomes["lease: no success run to pin"] += 1
            return
        try:
            time.sleep(self.rng.uniform(0.02, 0.3))
            run = lease.pins[key]
            gone = _run_gone(self.store, self.sink, key, run)
            if gone and self.leases.get(lease.lease_id).status == ACTIVE:  # live before and after the check
                self.violations.append(
                    f"lease {lease.lease_id} pins run {run} of {key}, yet it {gone} while the lease was live"
                )
        finally:
            self.leases.end(lease.lease_id)
        self.outcomes["lease: held"] += 1

    # -------------------------------------------------------------- SIGKILLed loads

    def _start_killed_load(self) -> None:
        ctx = mp.get_context("spawn")
        self._child = ctx.Process(
            target=_killed_load, args=(self.cfg, self.rng.randrange(1 << 30)), name=f"chaos-killed-load-{self.index}"
        )
        self._child.start()
        self.ops["killed_load"] += 1

    def _reap(self, *, wait: bool = False) -> None:
        child = self._child
        if child is None:
            return
        child.join(timeout=120 if wait else 0)
        code = child.exitcode
        if child.is_alive():
            if not wait:
                return
            child.kill()  # our own child, stuck: an error, not an injected fault
            child.join()
            code = "hung"
        if code == -signal.SIGKILL:
            self.faults["sigkilled_loads"] += 1
        elif code == EXIT_SKIPPED:
            self.outcomes["killed load: skipped before its commit"] += 1
        elif code == EXIT_NO_SUCCESS:
            self.outcomes["killed load: no success partition"] += 1
        else:
            self.errors[f"killed_load: exit {code}"] += 1
        self._child = None
        self._next_kill = time.monotonic() + self.rng.uniform(*KILL_EVERY_S)


def _run_gone(store: StateStore, sink: RawSink, key: PartitionKey, run_id: str) -> str | None:
    """Why ``run_id`` of ``key`` is no longer there (tombstoned or missing), or ``None``."""
    t = raw_run_tombstone
    with store.engine.connect() as conn:
        tombstoned = conn.execute(
            sa.select(t.c.deleted_at).where(
                *[t.c[c] == v for c, v in zip(KEY_COLUMNS, key.as_tuple())], t.c.run_id == run_id
            )
        ).first()
    if tombstoned is not None:
        return f"was tombstoned at {tombstoned.deleted_at.isoformat()}"
    try:
        sink.read_metadata(key, run_id)
    except GridcatError as exc:
        return f"is not readable in the raw sink ({exc.code}: {exc.message})"
    return None


def _worker_main(cfg: dict[str, Any], index: int, barrier, out) -> None:
    """Worker process entry: wait for the others, loop, send the report back."""
    try:
        worker = _Worker(cfg, index)
        barrier.wait(timeout=STARTUP_TIMEOUT_S)
        worker.run(cfg["seconds"])
        out.put(("ok", index, worker.report()))
    except BaseException:  # noqa: BLE001 - reported, so the parent shows the traceback
        barrier.abort()  # the others (and the parent) stop waiting for this one to start
        out.put(("error", index, traceback.format_exc()))


# ------------------------------------------------------------------ the parent


def run_chaos(
    state_url: str,
    *,
    warehouse: str = "postgres",
    warehouse_url: str | None = None,
    seconds: float = 30,
    workers: int = 4,
    partitions: int = 12,
    seed: int | None = None,
    workdir: str | os.PathLike | None = None,
    log=None,
) -> dict[str, Any]:
    """Run the chaos on the (empty or migrated) state database ``state_url``, reconcile, check;
    the report dict (``violations`` empty when every invariant holds). ``warehouse`` is
    ``postgres`` (needs ``warehouse_url``) or ``parquet`` (under ``workdir``, default a temp dir)."""
    if warehouse not in ("postgres", "parquet"):
        raise ValueError(f"unknown warehouse {warehouse!r}")
    if warehouse == "postgres" and not warehouse_url:
        raise ValueError("the postgres warehouse needs warehouse_url")
    seed = random.randrange(1 << 30) if seed is None else seed
    log = log or (lambda message: None)
    keys = partition_keys(partitions)
    with tempfile.TemporaryDirectory(prefix="gridcat-chaos-", dir=workdir) as tmp:
        cfg = {
            "state_url": state_url,
            "warehouse": warehouse,
            "warehouse_url": warehouse_url,
            "warehouse_root": str(Path(tmp) / "warehouse"),
            "raw_root": str(Path(tmp) / "raw"),
            "keys": [_key_to_json(k) for k in keys],
            "seed": seed,
            "seconds": seconds,
        }
        store = StateStore.open(state_url, upgrade=True)
        try:
            log(f"chaos: starting {workers} workers for {seconds:g} s (seed {seed})")
            reports, violations = _run_workers(cfg, workers, seconds)
            log("chaos: workers done; reconciling")
            totals = _merge(reports)
            violations = violations + totals.pop("violations")
            reconcile = _reconcile(store, cfg, keys, totals["loads"])
            violations += reconcile.pop("violations")
            checked, found = _check(store, cfg, keys, totals.pop("loads"))
            violations += found
        finally:
            store.close()
    return {
        "seed": seed,
        "seconds": seconds,
        "workers": workers,
        "partitions": len(keys),
        "warehouse": warehouse,
        "operations_total": sum(totals["ops"].values()),
        **totals,
        "reconcile": reconcile,
        "checked": checked,
        "violations": violations,
    }


def _run_workers(cfg: dict[str, Any], workers: int, seconds: float) -> tuple[list[dict], list[str]]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers + 1)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_worker_main, args=(cfg, i, barrier, out), name=f"chaos-worker-{i}") for i in range(workers)
    ]
    reports: dict[int, dict] = {}
    violations: list[str] = []
    try:
        for proc in procs:
            proc.start()
        with contextlib.suppress(threading.BrokenBarrierError):  # a worker died starting: see the queue
            barrier.wait(timeout=STARTUP_TIMEOUT_S)
        limit = time.monotonic() + seconds + STARTUP_TIMEOUT_S
        while len(reports) < workers and time.monotonic() < limit:
            try:
                kind, index, payload = out.get(timeout=1)
            except queue.Empty:
                if all(not p.is_alive() for p in procs) and out.empty():
                    break
                continue
            if kind == "ok":
                reports[index] = payload
            else:
                reports[index] = {}
                violations.append(f"worker {index} crashed:\n{payload}")
        for i, proc in enumerate(procs):
            proc.join(timeout=30)
            if i not in reports:
                violations.append(f"worker {i} sent no report (exit code {proc.exitcode})")
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join()
    return [r for r in reports.values() if r], violations


def _merge(reports: list[dict]) -> dict[str, Any]:
    ops, outcomes, faults, errors = Counter(), Counter(), Counter({k: 0 for k in FAULT_KINDS}), Counter()
    samples, loads, violations = [], [], []
    for r in reports:
        ops.update(r["ops"])
        outcomes.update(r["outcomes"])
        faults.update(r["faults"])
        errors.update(r["errors"])
        samples += r["error_samples"]
        loads += r["loads"]
        violations += r["violations"]
    return {
        "ops": dict(sorted(ops.items())),
        "outcomes": dict(sorted(outcomes.items())),
        "faults": {k: faults[k] for k in FAULT_KINDS},
        "errors": dict(sorted(errors.items())),
        "error_samples": samples[:10],
        "loads": loads,
        "violations": violations,
    }


def _reconcile(store: StateStore, cfg: dict[str, Any], keys: list[PartitionKey], loads: list) -> dict[str, Any]:
    """find_stale + load_partition of each, until nothing is stale (at most MAX_RECONCILE_ROUNDS)."""
    sink, warehouse, leases = RawSink(cfg["raw_root"]), _open_target(cfg), LeaseStore(store)
    days = sorted({k.logical_date for k in keys})
    rounds = loaded = 0
    failures: list[str] = []
    while True:
        stale = find_stale(
            store,
            feeds=sorted({k.query_name for k in keys}),
            customers=None,
            start_date=days[0],
            end_date=days[-1],
            now=datetime.now(UTC),
            warehouse=warehouse,
        )
        if not stale:
            return {"rounds": rounds, "loaded": loaded, "failures": failures, "violations": []}
        if rounds == MAX_RECONCILE_ROUNDS:
            return {
                "rounds": rounds,
                "loaded": loaded,
                "failures": failures,
                "violations": [
                    f"reconcile did not converge after {rounds} rounds; still stale: "
                    + ", ".join(f"{p.key} ({p.reason}{': ' + p.error if p.error else ''})" for p in stale)
                ],
            }
        rounds += 1
        for p in stale:
            try:
                outcome = load_partition(store, sink, warehouse, p.key, p.run_id, version=p.version, leases=leases)
            except Exception as exc:  # noqa: BLE001 - the next round (or the checks) will show it
                failures.append(f"{p.key}: {_short(exc)}")
                continue
            if outcome.status == LOADED:
                loaded += 1
                loads.append((_key_to_json(p.key), outcome.run_id, outcome.state_version))


def _check(store: StateStore, cfg: dict[str, Any], keys: list[PartitionKey], loads: list) -> tuple[dict, list[str]]:
    """The invariants (see the module docstring): what was checked, and the violations."""
    sink, warehouse = RawSink(cfg["raw_root"]), _open_target(cfg)
    violations: list[str] = []
    checked: Counter[str] = Counter()
    last_loaded: dict[PartitionKey, tuple[int, str]] = {}
    for key_json, run_id, version in loads:
        key = _key_from_json(key_json)
        last_loaded[key] = max(last_loaded.get(key, (-1, "")), (version, run_id))
    states = store.get_many(keys)

    for key, state in states.items():
        slice_ = warehouse.loaded_slice(key.query_name, key.customer_id, key.logical_date)
        if state.version == 0:
            if slice_ is not None:
                violations.append(f"{key}: no state, yet a slice of run {slice_.run_id}")
            continue
        checked["partitions"] += 1
        # what each state version said: {version: (run, status)}
        versions = {h.state_version: (h.run_id, h.status) for h in store.history(key) if h.change_seq is not None}
        # (3) the authoritative run is still in the raw sink
        try:
            meta = sink.read_metadata(key, state.current_run_id)
        except GridcatError as exc:
            meta = None
            violations.append(
                f"{key}: authoritative run {state.current_run_id} ({state.status}) is gone from the "
                f"raw sink: {exc.code}: {exc.message}"
            )
        # any slice must be a run the state had as success at the slice's version
        if slice_ is not None:
            checked["slices"] += 1
            said = versions.get(slice_.state_version)
            if said != (slice_.run_id, "success"):
                violations.append(
                    f"{key}: slice holds run {slice_.run_id} at version {slice_.state_version}, but "
                    f"that version of the state was {said}"
                )
            rows = warehouse.read_slice(key.query_name, key.customer_id, key.logical_date)
            run_ids = set(rows.column("run_id").to_pylist())
            if rows.num_rows != slice_.rows or (rows.num_rows and run_ids != {slice_.run_id}):
                violations.append(
                    f"{key}: slice says run {slice_.run_id} x {slice_.rows} rows, its rows are "
                    f"{rows.num_rows} of runs {sorted(run_ids)}"
                )
        if state.status == "success":
            # (1) the slice is the authoritative run at the state's version
            checked["success_partitions"] += 1
            if slice_ is None or (slice_.run_id, slice_.state_version) != (state.current_run_id, state.version):
                got = None if slice_ is None else (slice_.run_id, slice_.state_version)
                violations.append(
                    f"{key}: success at run {state.current_run_id} version {state.version}, but the slice holds {got}"
                )
            elif slice_.rows != state.record_count or (meta is not None and meta.record_count != slice_.rows):
                violations.append(f"{key}: slice has {slice_.rows} rows, state says {state.record_count}")
        elif state.status == "failed":
            # (2) a failed partition keeps its last good slice
            checked["failed_partitions"] += 1
            good = last_loaded.get(key)
            if good is not None:
                checked["failed_with_good_slice"] += 1
                if slice_ is None:
                    violations.append(f"{key}: failed, and lost its last good slice (run {good[1]} version {good[0]})")
                elif (slice_.state_version or 0) < good[0]:
                    violations.append(
                        f"{key}: failed; slice went back from version {good[0]} to "
                        f"{slice_.state_version} (run {slice_.run_id})"
                    )

    # (3) tombstones: never authoritative, never while a live lease pinned the run
    t, p, l = raw_run_tombstone, run_lease_pin, run_lease
    with store.engine.connect() as conn:
        tombstones = conn.execute(sa.select(t)).all()
        pinned = conn.execute(
            sa.select(
                t.c.run_id,
                t.c.deleted_at,
                *[t.c[c] for c in KEY_COLUMNS],
                l.c.lease_id,
                l.c.created_at,
                l.c.expires_at,
                l.c.ended_at,
            ).select_from(
                t.join(p, sa.and_(t.c.run_id == p.c.run_id, *[t.c[c] == p.c[c] for c in KEY_COLUMNS])).join(
                    l, l.c.lease_id == p.c.lease_id
                )
            )
        ).all()
        checked["leases"] = conn.execute(sa.select(sa.func.count()).select_from(l)).scalar_one()
    checked["tombstones"] = len(tombstones)
    for row in tombstones:
        key = PartitionKey(row.source, row.customer_id, row.query_name, row.logical_date)
        if key in states and states[key].current_run_id == row.run_id:
            violations.append(f"{key}: authoritative run {row.run_id} was tombstoned by retention")
    margin = timedelta(seconds=PIN_MARGIN_S)
    for row in pinned:
        end = min(x for x in (row.ended_at, row.expires_at) if x is not None)
        if row.created_at + margin < row.deleted_at < end - margin:
            violations.append(
                f"run {row.run_id} of {row.customer_id}/{row.query_name}/{row.logical_date} was "
                f"tombstoned at {row.deleted_at.isoformat()} while lease {row.lease_id} pinned it "
                f"({row.created_at.isoformat()} .. {end.isoformat()})"
            )

    # (4) the change feed: 1..last with no gap; per partition, versions 1..version
    last = store.last_change_seq()
    changes, cursor = [], 0
    while True:
        page = store.changes_since(cursor, limit=5000)
        if not page:
            break
        changes += page
        cursor = page[-1].seq
    seqs = [c.seq for c in changes]
    checked["changes"] = len(changes)
    if seqs != list(range(1, last + 1)):
        missing = sorted(set(range(1, last + 1)) - set(seqs))
        extra = sorted(set(seqs) - set(range(1, last + 1)))
        duplicated = len(seqs) - len(set(seqs))
        violations.append(
            f"change feed: {len(seqs)} changes for last seq {last}; missing seqs {missing[:20]}, "
            f"unexpected seqs {extra[:20]}, {duplicated} duplicated"
        )
    per_key: dict[PartitionKey, list] = defaultdict(list)
    for change in changes:
        per_key[change.key].append(change)
    for key, state in states.items():
        feed = per_key.get(key, [])
        if [c.version for c in feed] != list(range(1, state.version + 1)):
            violations.append(f"{key}: feed versions {[c.version for c in feed][:30]} are not 1..{state.version}")
        elif feed and feed[-1].run_id != state.current_run_id:
            violations.append(f"{key}: last change names run {feed[-1].run_id}, state has {state.current_run_id}")
    return dict(checked), violations


# ------------------------------------------------------------------ printing and the CLI


def print_report(report: dict[str, Any]) -> None:
    """The report as lines: operations, outcomes, faults, errors, checks, violations."""

    def counts(d: dict) -> str:
        return ", ".join(f"{k} {v}" for k, v in d.items()) or "none"

    print(
        f"chaos: {report['workers']} workers x {report['seconds']:g} s, {report['partitions']} partitions, "
        f"warehouse {report['warehouse']}, seed {report['seed']}"
    )
    print(f"operations: {report['operations_total']} ({counts(report['ops'])})")
    print(f"outcomes: {counts(report['outcomes'])}")
    f = report["faults"]
    print(
        f"faults injected: {sum(f.values())} (failed pulls {f['failed_pulls']}, crashed pulls {f['crashed_pulls']}, "
        f"transient load errors {f['transient_load_errors']}, SIGKILLed loads {f['sigkilled_loads']})"
    )
    print(f"unexpected errors: {counts(report['errors'])}")
    for sample in report["error_samples"]:
        print(f"  {sample}")
    r = report["reconcile"]
    print(f"reconcile: {r['rounds']} round(s), {r['loaded']} load(s), {len(r['failures'])} failure(s)")
    for failure in r["failures"][:10]:
        print(f"  {failure}")
    print(f"checked: {counts(report['checked'])}")
    print(f"violations: {len(report['violations'])}")
    for violation in report["violations"]:
        print(f"  {violation}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--warehouse", choices=("postgres", "parquet"), default="postgres")
    parser.add_argument("--json", action="store_true", help="also print the report as one JSON line")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.workers < 1 or args.partitions < 1:
        parser.error("--seconds must be > 0, --workers and --partitions >= 1")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so a kill still drops the databases
    kwargs = {
        "warehouse": args.warehouse,
        "seconds": args.seconds,
        "workers": args.workers,
        "partitions": args.partitions,
        "seed": args.seed,
        "log": lambda m: print(m, flush=True),
    }
    with scratch_database(args.pg_url, "gridcat_bench_chaos") as state_url:
        if args.warehouse == "postgres":
            with scratch_database(args.pg_url, "gridcat_bench_chaos_wh") as warehouse_url:
                report = run_chaos(state_url, warehouse_url=warehouse_url, **kwargs)
        else:
            report = run_chaos(state_url, **kwargs)
    print_report(report)
    if args.json:
        print(json.dumps(report, default=str))
    return 1 if report["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
