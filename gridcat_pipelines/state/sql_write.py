"""The portable write path (SQLAlchemy Core, SQLite and PostgreSQL): what a write transaction
reads under its locks and what it writes, one statement per step.

``record_results`` goes through here on SQLite (PostgreSQL batches it in ``pg_write``);
re-points and ``hold`` use it on both dialects. Change seqs come from a one-row counter
locked until commit, so feed order is commit order and a reader following ``change_seq``
never skips a change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gridcat_pipelines.errors import failed_precondition
from gridcat_pipelines.state import projector
from gridcat_pipelines.state.codecs import key_of, state_from_row, state_to_row
from gridcat_pipelines.state.db import dialect_insert
from gridcat_pipelines.state.decisions import Plan, Reads, RunInfo
from gridcat_pipelines.state.idempotency import SCOPE_RECORD, save_responses, stored_responses
from gridcat_pipelines.state.key_queries import chunks, key_equals, restrict
from gridcat_pipelines.state.keys import PartitionKey
from gridcat_pipelines.state.models import (
    OUTCOME_APPLIED,
    OUTCOME_REPOINTED,
    PartitionState,
    ValidationResult,
)
from gridcat_pipelines.state.tables import (
    KEY_COLUMNS,
    partition_state,
    partition_state_history,
    raw_run_tombstone,
    state_change_counter,
)

_APPLIED_KINDS = (OUTCOME_APPLIED, OUTCOME_REPOINTED)


def read_batch(conn: Connection, items: list[ValidationResult], keyed: dict[str, str]) -> Reads:
    """Stored idempotent responses, the locked state rows, what history knows of the runs."""
    stored = stored_responses(conn, SCOPE_RECORD, keyed) if keyed else {}
    keys = sorted({i.key for i in items if not (i.idempotency_key and i.idempotency_key in stored)})
    states = lock_states(conn, keys) if keys else {}
    # a key without a state row has no history (the first offer for a key always applies)
    pairs = sorted({(i.key, i.run_id) for i in items if i.key in states})
    return Reads(stored=stored, states=states, runs=run_infos(conn, pairs))


def lock_states(conn: Connection, keys: Sequence[PartitionKey]) -> dict[PartitionKey, PartitionState]:
    """Read (and on PostgreSQL row-lock, in key order) the existing rows of ``keys``."""
    found: dict[PartitionKey, PartitionState] = {}
    dialect = conn.dialect.name
    for chunk in chunks(sorted(keys)):
        query = restrict(
            dialect, sa.select(partition_state), partition_state, KEY_COLUMNS, [k.as_tuple() for k in chunk]
        ).order_by(*[partition_state.c[c] for c in KEY_COLUMNS])
        if dialect == "postgresql":
            query = query.with_for_update(of=partition_state)
        for row in conn.execute(query):
            state = state_from_row(row)
            found[state.key] = state
    return found


def run_infos(conn: Connection, pairs: Sequence[tuple[PartitionKey, str]]) -> dict[tuple[PartitionKey, str], RunInfo]:
    """For each (key, run): the last history row offered for it and whether it was ever applied."""
    h = partition_state_history
    cols = [h.c[c] for c in KEY_COLUMNS] + [h.c.run_id]
    infos: dict[tuple[PartitionKey, str], RunInfo] = {}
    for chunk in chunks(pairs):
        latest = sa.select(
            sa.func.max(h.c.id).label("last_id"),
            sa.func.max(sa.case((h.c.outcome.in_(_APPLIED_KINDS), 1), else_=0)).label("ever_applied"),
        )
        grouped = (
            restrict(conn.dialect.name, latest, h, (*KEY_COLUMNS, "run_id"), [(*k.as_tuple(), r) for k, r in chunk])
            .group_by(*cols)
            .subquery()
        )
        query = sa.select(h, grouped.c.ever_applied).join(grouped, h.c.id == grouped.c.last_id)
        for row in conn.execute(query):
            mapping = dict(row._mapping)
            infos[(key_of(row), row.run_id)] = RunInfo(last=mapping, ever_applied=bool(mapping.pop("ever_applied")))
    return infos


def check_not_retired(conn: Connection, key: PartitionKey, run_id: str) -> None:
    """``FAILED_PRECONDITION`` when retention deleted ``run_id``, or a newer run, of ``key``
    (so no deleted run can become current again; see ``raw_run_tombstone``)."""
    t = raw_run_tombstone
    newest = conn.execute(sa.select(sa.func.max(t.c.run_id)).where(*key_equals(t, key))).scalar_one_or_none()
    if newest is not None and run_id <= newest:
        detail = "was deleted" if run_id == newest else f"is older than run {newest}, which was deleted"
        raise failed_precondition(
            f"run {run_id} of {key} {detail} by raw retention; re-point to a newer run "
            "(a re-point never goes back past a run retention deleted)",
            {"retention_deleted_run_id": newest},
        )


def write_batch(conn: Connection, plan: Plan, clock: Callable[[], datetime]) -> None:
    """States, then the change seqs (locks the counter until commit), then history, responses
    (stored at ``clock()``)."""
    applied_rows = [row for row in plan.history if row["outcome"] == OUTCOME_APPLIED]
    if plan.changed:
        write_states(conn, plan.changed, existing=plan.existing)
        seqs = take_change_seqs(conn, len(applied_rows))
        for row, seq in zip(applied_rows, seqs):
            row["change_seq"] = seq
    insert_history(conn, plan.history)
    if plan.responses:
        save_responses(conn, SCOPE_RECORD, plan.responses, clock())


def write_states(conn: Connection, changed: dict[PartitionKey, PartitionState], *, existing: set[PartitionKey]) -> None:
    """Update locked rows and insert new ones (a concurrent insert of a new key raises and retries).

    The projector fills the promoted facets' columns from each row's tags in this same
    transaction (see ``projector`` for the lock protocol).
    """
    projections = projector.load_projections(conn)
    table = projector.table_for(projections)
    updates = [projector.project(state_to_row(s), projections) for k, s in changed.items() if k in existing]
    inserts = [projector.project(state_to_row(s), projections) for k, s in changed.items() if k not in existing]
    if updates:
        stmt = dialect_insert(conn.dialect.name, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(KEY_COLUMNS),
            set_={c: stmt.excluded[c] for c in updates[0] if c not in KEY_COLUMNS},
        )
        for chunk in chunks(updates):
            conn.execute(stmt, list(chunk))
    for chunk in chunks(inserts):
        conn.execute(table.insert(), list(chunk))


def take_change_seqs(conn: Connection, count: int) -> list[int]:
    """Reserve ``count`` consecutive change seqs; the counter row stays locked until commit."""
    last = conn.execute(
        state_change_counter.update()
        .where(state_change_counter.c.id == 1)
        .values(last_seq=state_change_counter.c.last_seq + count)
        .returning(state_change_counter.c.last_seq)
    ).scalar_one()
    return list(range(last - count + 1, last + 1))


def insert_history(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert history rows, in order."""
    for chunk in chunks(rows):
        conn.execute(partition_state_history.insert(), list(chunk))
