"""Helpers shared by the tag facet tests."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from gridcat_pipelines.run_ids import new_run_id
from gridcat_pipelines.state import PartitionKey, StateStore, ValidationResult


def eq(key: str, value: str) -> dict:
    """One seed-000 EQ filter."""
    return {"key": key, "op": "EQ", "value": {"stringValue": value}}


def result(i: int, tags: dict | None, *, day: int = 0, query: str = "campaign") -> ValidationResult:
    """A success result for customer ``1000+i`` on 2026-01-01 + ``day``."""
    return ValidationResult(
        key=PartitionKey("google_ads", str(1000 + i), query, date(2026, 1, 1) + timedelta(days=day)),
        run_id=new_run_id(),
        status="success",
        record_count=i,
        tags=tags,
    )


def seed_states(store: StateStore, n: int, tagger) -> None:
    """``n`` states, tags from ``tagger(i)``."""
    store.record_results([result(i, tagger(i)) for i in range(n)])


def snapshot(store: StateStore) -> dict:
    """Registry, jobs, columns and indexes of partition_state: equal before/after a rejected call."""
    insp_engine = store.engine
    with insp_engine.connect() as conn:
        insp = sa.inspect(conn)
        columns = [c["name"] for c in insp.get_columns("partition_state")]
        indexes = sorted(i["name"] for i in insp.get_indexes("partition_state"))
        facets = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM tag_facet ORDER BY key_name").all()]
        jobs = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM tag_facet_backfill_job ORDER BY job_id").all()]
        states = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM partition_state ORDER BY 1, 2, 3, 4").all()]
    return {"columns": columns, "indexes": indexes, "facets": facets, "jobs": jobs, "states": states}


def all_pages(store: StateStore, filters, page_size: int = 3) -> list:
    """Every state a filtered listing returns, following tokens."""
    out, token = [], None
    while True:
        page = store.list_states(filters=filters, page_size=page_size, page_token=token)
        out.extend(page.states)
        token = page.next_page_token
        if not token:
            return out
