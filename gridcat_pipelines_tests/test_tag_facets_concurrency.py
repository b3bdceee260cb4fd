"""Tag facets under concurrent writers on PostgreSQL: the projector/promotion race, backfill
while writers run, pagination under concurrent inserts."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import replace

import pytest

from gridcat_pipelines.state import StateStore
from gridcat_pipelines.state.db import write_connection
from gridcat_pipelines.tag_facets.service import FacetService
from gridcat_pipelines_tests.facet_helpers import all_pages, eq, result, seed_states

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_store(pg_url):
    store = StateStore.open(pg_url)
    yield store
    store.close()


def test_writer_that_read_the_registry_before_promotion_leaves_no_stale_row(pg_store):
    store, svc = pg_store, FacetService(pg_store)
    seed_states(store, 5, lambda i: {"env": "old"})
    # the column exists already (promoted, then disabled), so re-promotion runs no ADD COLUMN
    # that would itself wait for the writer: only the activation's SHARE lock orders them.
    first = svc.promote("env")
    svc.run_backfill(first["job_id"])
    svc.disable(first["facet_id"], "to promote again")
    read_registry, release = threading.Event(), threading.Event()
    item = result(77, {"env": "late"}).validated()

    def slow_writer():
        with write_connection(store.engine) as conn, conn.begin():
            store._record_batch(conn, [item])  # reads the registry (no facet yet), writes the row
            read_registry.set()
            release.wait(10)  # ... and commits only after the promotion started

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert read_registry.wait(10)
    promoted: dict = {}
    promoter = threading.Thread(target=lambda: promoted.update(svc.promote("env")))
    promoter.start()
    time.sleep(0.5)
    assert promoter.is_alive()  # activation waits for the writer (SHARE vs ROW EXCLUSIVE)
    release.set()
    writer.join(10)
    promoter.join(30)
    assert promoted["status"] == "BACKFILLING"
    assert svc.run_backfill(promoted["job_id"])["status"] == "SUCCEEDED"
    (c,) = svc.compliance()["facets"]
    assert (c["rows_total"], c["null_with_tag"], c["drift"]) == (6, 0, 0)
    assert [s.key for s in store.list_states(filters=[eq("env", "late")]).states] == [item.key]


@pytest.mark.slow
def test_promote_and_backfill_while_writers_run_leave_no_stale_row(pg_store):
    store, svc = pg_store, FacetService(pg_store)
    seed_states(store, 300, lambda i: {"env": f"e{i % 7}"})
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(seed: int):
        rng = random.Random(seed)
        own = StateStore.open(store.engine.url.render_as_string(hide_password=False))
        try:
            n = 0
            while not stop.is_set():
                i = rng.randrange(600)  # half updates of existing keys, half new keys
                tags = {"env": f"w{rng.randrange(5)}"} if rng.random() < 0.9 else {"other": "x"}
                own.record_results([result(i, tags, day=seed % 2)])
                n += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    facet = svc.promote("env")
    job = svc.run_backfill(svc.trigger_backfill(facet["facet_id"], 25, "FULL")["job_id"])
    first = svc.run_backfill(facet["job_id"]) if facet["job_id"] else job
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert job["status"] == first["status"] == "SUCCEEDED"
    (c,) = svc.compliance()["facets"]
    assert c["null_with_tag"] == 0 and c["drift"] == 0 and c["rows_total"] > 300
    assert svc.list_facets()["facets"][0]["status"] == "ENABLED"


def test_pagination_visits_every_row_once_under_concurrent_inserts(pg_store):
    store, svc = pg_store, FacetService(pg_store)
    seed_states(store, 120, lambda i: {"env": "prod" if i % 2 else "dev"})
    svc.run_backfill(svc.promote("env")["job_id"])
    before = {s.key for s in all_pages(store, [eq("env", "prod")], page_size=1000)}
    stop = threading.Event()

    def inserter():
        i = 0
        while not stop.is_set():
            store.record_result(replace(result(5000 + i, {"env": "prod"}), key=result(5000 + i, None, day=3).key))
            i += 1

    t = threading.Thread(target=inserter)
    t.start()
    try:
        seen = [s.key for s in all_pages(store, [eq("env", "prod")], page_size=7)]
    finally:
        stop.set()
        t.join(10)
    assert len(seen) == len(set(seen))  # no row twice
    assert before <= set(seen)  # every row that existed before, once
    assert seen == sorted(seen)
