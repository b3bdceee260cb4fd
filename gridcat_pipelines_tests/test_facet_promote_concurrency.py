"""Concurrent promotions on PostgreSQL: index builds are serialised and deadlock victims retried,
so every promotion succeeds while state writers run."""

from __future__ import annotations

import threading

import pytest

from gridcat_pipelines.run_ids import new_run_id
from gridcat_pipelines.state import StateStore, ValidationResult
from gridcat_pipelines.tag_facets import ddl
from gridcat_pipelines.tag_facets.identifiers import index_name_for
from gridcat_pipelines.tag_facets.service import FacetService

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_four_concurrent_promotions_with_writers(pg_url):
    store = StateStore.open(pg_url)
    try:
        store.record_results(
            [
                ValidationResult.parse(
                    customer_id=str(100 + i),
                    query_name="campaign",
                    logical_date="2026-11-01",
                    run_id=new_run_id(),
                    status="success",
                    tags={f"k{j}": "v" for j in range(4)},
                )
                for i in range(50)
            ]
        )
        service = FacetService(store)
        errors: list[BaseException] = []
        facets: list[dict] = []
        stop = threading.Event()

        def promote(n: int) -> None:
            try:
                facets.append(service.promote(f"k{n}"))
            except BaseException as exc:
                errors.append(exc)

        def write() -> None:
            i = 0
            while not stop.is_set():
                store.record_result(
                    ValidationResult.parse(
                        customer_id=str(100 + i % 50),
                        query_name="campaign",
                        logical_date="2026-11-01",
                        run_id=new_run_id(),
                        status="success",
                        tags={f"k{j}": str(i) for j in range(4)},
                    )
                )
                i += 1

        writers = [threading.Thread(target=write) for _ in range(2)]
        promoters = [threading.Thread(target=promote, args=(n,)) for n in range(4)]
        for t in writers + promoters:
            t.start()
        for t in promoters:
            t.join(timeout=120)
        stop.set()
        for t in writers:
            t.join(timeout=60)
        assert not errors, errors
        assert sorted(f["key_name"] for f in facets) == ["k0", "k1", "k2", "k3"]
        assert all(f["status"] in ("BACKFILLING", "ENABLED") for f in facets), facets
        for n in range(4):
            assert ddl.index_state(store.engine, index_name_for(f"k{n}")) == "valid"
    finally:
        store.close()
