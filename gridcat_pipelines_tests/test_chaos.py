"""The chaos bench (``bench/chaos.py``) as a test: a short seeded run on the test PostgreSQL.

Three worker processes pull, re-point, load, run retention and take leases for a few seconds,
with failed pulls, crashed pulls, transient load errors and SIGKILLed loads injected; then
reconcile, and every invariant of the bench must hold. The test also requires that each kind
of fault was injected at least once, so it cannot pass on a run where nothing went wrong.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess, pytest.mark.postgres]

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"
SEED = 20_240_611


@pytest.fixture
def chaos(monkeypatch):
    """``bench/chaos.py`` as module ``chaos`` (bench/ is not a package). bench/ stays on
    ``sys.path`` for the test, so the worker processes it spawns import it the same way."""
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    return importlib.import_module("chaos")


def test_chaos_run_keeps_every_invariant(chaos, pg_databases, tmp_path):
    report = chaos.run_chaos(
        pg_databases.create(),
        warehouse="postgres",
        warehouse_url=pg_databases.create(),
        seconds=8,
        workers=3,
        partitions=12,
        seed=SEED,
        workdir=tmp_path,
    )
    summary = {k: report[k] for k in ("operations_total", "ops", "faults", "errors", "error_samples", "checked")}
    assert report["violations"] == [], summary
    assert report["errors"] == {}, f"an operation failed in a way no fault explains: {summary}"
    for kind in chaos.FAULT_KINDS:
        assert report["faults"][kind] >= 1, f"no {kind} injected: {summary}"
    for op in ("pull", "load", "repoint", "retention", "lease", "killed_load"):
        assert report["ops"].get(op, 0) >= 1, f"no {op} operation: {summary}"
    # a partition no worker reached in the round (a loaded machine) has no state and is checked to
    # have no slice either; every other one is checked in full
    assert 1 <= report["checked"]["partitions"] <= 12 and report["checked"]["success_partitions"] >= 1, summary
    assert report["checked"]["changes"] >= 1 and report["checked"]["tombstones"] >= 1, summary
