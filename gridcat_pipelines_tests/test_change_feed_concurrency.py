"""The change feed under concurrent writers on PostgreSQL.

Eight writer processes offer results for overlapping keys (a new run per result, random
batches, tiny sleeps so commits interleave) while this process follows ``changes_since``.
The reader must see every applied change exactly once, in seq order 1..N with no gap in
any batch it reads; every key must end at its newest offered run with one version per
applied result.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import random
import time
import traceback
from collections import Counter, defaultdict
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from gridcat_pipelines.run_ids import new_run_id
from gridcat_pipelines.state import PartitionKey, StateStore, ValidationResult

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.multiprocess]

N_WRITERS = 8
RESULTS_PER_WRITER = 150
KEYS = [
    PartitionKey("google_ads", str(5_550_000 + customer), "campaign", date(2026, 11, 1) + timedelta(days=day))
    for customer in range(5)
    for day in range(4)
]  # 20 keys, every writer writes all of them
TIMEOUT_S = 90


def _writer(url: str, index: int, seed: int, start, out) -> None:
    """One writer process: RESULTS_PER_WRITER results in batches of 1-5, each for a new run."""
    try:
        rng = random.Random(seed)
        store = StateStore.open(url)
        offers = []
        start.wait(timeout=TIMEOUT_S)
        left = RESULTS_PER_WRITER
        while left:
            batch = []
            for _ in range(min(rng.randint(1, 5), left)):
                failed = rng.random() < 0.3
                batch.append(
                    ValidationResult(
                        key=rng.choice(KEYS),
                        run_id=new_run_id(),
                        status="failed" if failed else "success",
                        schema_version="1",
                        record_count=rng.randint(0, 1000),
                        error_message=f"writer {index}: check {rng.randint(1, 9)} failed" if failed else None,
                    )
                )
            outcomes = store.record_results(batch)
            offers.extend((r.key, r.run_id, r.status, r.record_count, o.outcome) for r, o in zip(batch, outcomes))
            left -= len(batch)
            time.sleep(rng.uniform(0, 0.003))
        store.close()
        out.put(("ok", index, offers))
    except BaseException:  # report, so the test fails with the writer's traceback
        out.put(("error", index, traceback.format_exc()))


def test_feed_reader_sees_every_change_once_in_commit_order(pg_url):
    started = time.monotonic()
    seed = random.randrange(1 << 30)
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(N_WRITERS + 1)
    out = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(pg_url, i, seed + i, start, out), daemon=True) for i in range(N_WRITERS)]
    for proc in procs:
        proc.start()

    store = StateStore.open(pg_url)
    rng = random.Random(seed)
    seen = []  # every change read, in read order
    gaps = []  # batches that were not cursor+1, cursor+2, ...
    reads_while_writing = 0
    reports: dict[int, list] = {}
    cursor = 0

    def read() -> list:
        nonlocal cursor
        batch = store.changes_since(cursor, limit=rng.randint(1, 60))
        seqs = [c.seq for c in batch]
        if seqs != list(range(cursor + 1, cursor + 1 + len(seqs))):
            gaps.append((cursor, seqs))
        seen.extend(batch)
        if batch:
            cursor = batch[-1].seq
        return batch

    try:
        start.wait(timeout=TIMEOUT_S)
        writing_started = time.monotonic()
        while len(reports) < N_WRITERS:
            if read():
                reads_while_writing += 1
            else:
                time.sleep(0.002)
            try:
                while True:
                    kind, index, payload = out.get_nowait()
                    assert kind == "ok", f"writer {index} failed:\n{payload}"
                    reports[index] = payload
            except queue.Empty:
                pass
            assert time.monotonic() - started < TIMEOUT_S, "writers did not finish in time"
            dead = [p.pid for i, p in enumerate(procs) if i not in reports and p.exitcode not in (None, 0)]
            assert not dead, f"writer processes {dead} died without reporting"
        writing_s = time.monotonic() - writing_started
        while read():  # what committed after the last poll
            pass
        assert store.changes_since(cursor) == []  # the final read returns nothing
        for proc in procs:
            proc.join(timeout=30)
            assert proc.exitcode == 0
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(5)

    with store.engine.connect() as conn:
        history = conn.execute(
            sa.text(
                "SELECT customer_id, logical_date, run_id, outcome, status, record_count,"
                " state_version, change_seq FROM partition_state_history ORDER BY id"
            )
        ).all()
    finals = store.get_many(KEYS)
    last_seq = store.last_change_seq()
    store.close()

    def key_of(row) -> PartitionKey:
        return PartitionKey("google_ads", row.customer_id, "campaign", row.logical_date)

    offers = [offer for payload in reports.values() for offer in payload]
    assert len(offers) == N_WRITERS * RESULTS_PER_WRITER == len(history)
    outcome_counts = Counter(row.outcome for row in history)
    assert set(outcome_counts) <= {"applied", "superseded"}  # every result has its own run
    applied = [row for row in history if row.outcome == "applied"]

    # (c) no batch had a gap: the feed never showed seq n+1 before seq n had committed
    assert gaps == []
    # (a) every applied change was read once, seqs exactly 1..N in read order
    assert [c.seq for c in seen] == list(range(1, len(applied) + 1))
    assert last_seq == len(applied)
    assert {(c.key, c.version) for c in seen} == {(key_of(r), r.state_version) for r in applied}
    by_seq = {row.change_seq: row for row in applied}
    assert sorted(by_seq) == list(range(1, len(applied) + 1))
    for change in seen:
        row = by_seq[change.seq]
        assert (change.key, change.run_id, change.version, change.status, change.record_count, change.kind) == (
            key_of(row),
            row.run_id,
            row.state_version,
            row.status,
            row.record_count,
            "applied",
        )

    # what each writer was told is what the history says
    by_run = {row.run_id: row for row in history}
    assert len(by_run) == len(history)  # run ids are unique across processes
    for key, run_id, status, record_count, outcome in offers:
        row = by_run[run_id]
        assert (key_of(row), row.status, row.record_count, row.outcome) == (key, status, record_count, outcome)

    # (b) per key: one version per applied result, and the newest run offered is authoritative
    per_key = defaultdict(list)
    for row in history:
        per_key[key_of(row)].append(row)
    assert set(per_key) == set(KEYS)
    for key, rows in per_key.items():
        key_applied = [r for r in rows if r.outcome == "applied"]
        final = finals[key]
        newest = max(r.run_id for r in rows)
        assert final.version == len(key_applied)
        assert final.attempt_count == len(key_applied)  # one run per result
        assert final.current_run_id == max(r.run_id for r in key_applied) == newest
        newest_row = by_run[newest]
        assert (final.status, final.record_count) == (newest_row.status, newest_row.record_count)
        # the feed order of a key's changes is its version order, and its runs only move forward
        feed = [c for c in seen if c.key == key]
        assert [c.version for c in feed] == list(range(1, len(key_applied) + 1))
        assert all(a.run_id < b.run_id for a, b in zip(feed, feed[1:]))
        # a superseded result lost to a newer run that was authoritative at the time
        run_at_version = {r.state_version: r.run_id for r in key_applied}
        for r in rows:
            if r.outcome == "superseded":
                assert r.run_id < run_at_version[r.state_version]

    elapsed = time.monotonic() - started
    print(
        f"\nchange feed: {len(applied)} changes, outcomes {dict(outcome_counts)}, "
        f"{reads_while_writing} non-empty reads while writing ({writing_s:.1f}s), "
        f"total {elapsed:.1f}s, seed {seed}"
    )
    assert elapsed < 60
