"""The projector: every state write fills the projecting facets' columns from the row's tags,
in the writer's own transaction.

It lives with the store because every state write runs it; the facets themselves are promoted,
disabled and backfilled by ``gridcat_pipelines.tag_facets`` (``FacetService``).

Which facets project
    A facet projects once its column exists and its registry row says ``projecting`` (set by
    promotion, cleared by disable). The portable write path (``sql_write``) calls :func:`load_projections` once per write
    transaction, before it writes ``partition_state``; the registry is a handful of rows,
    so this costs one indexed read and needs no cache to invalidate. PostgreSQL's batched
    write path queues the same two statements in its read pipeline instead
    (:func:`queue_load_projections`): no extra round trip, same order, same snapshots.

The race this closes (PostgreSQL; SQLite serialises writers, so there it cannot happen)
    A writer that read the facet list *before* a promotion committed, and writes *after* the
    backfill went past its key, would leave a row whose column is NULL (or stale) forever: the
    backfill never comes back, the writer never knew. Two rules make that impossible:

    1. The writer takes ``ROW EXCLUSIVE`` on ``partition_state`` (``LOCK TABLE``; it needs that
       lock for its INSERT/UPDATE anyway, and writers do not conflict with each other) and only
       *then* reads the registry, in a new statement, hence a new READ COMMITTED snapshot.
    2. Promotion switches ``projecting`` on in a transaction that first takes ``SHARE`` on
       ``partition_state`` (``FacetService._activate``). ``SHARE`` conflicts with ``ROW EXCLUSIVE``: it waits
       until every writer that already holds the lock has committed, and writers arriving
       meanwhile wait for the promotion to commit.

    So every writer either committed before the facet became ``projecting`` (its row is visible
    to the backfill, which starts after that commit and reads committed rows), or read the
    registry after that commit (and projected itself). A writer updating a row that a backfill
    batch is updating at the same moment is serialised by the row lock; the later UPDATE
    re-evaluates ``tags`` on the newest row version, so both paths write the same value.
    ``SHARE`` is held only for the one-row registry update (writers pause for milliseconds),
    with a ``lock_timeout`` and retries so a long writer cannot stall promotion forever.
    Disable needs no lock: a writer that still projects a disabled facet writes a correct
    value into a column nobody reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gridcat_pipelines.state.tables import state_table_with, tag_facet

Projection = tuple[str, str]  # (tag key, column name)

LOCK_SQL = "LOCK TABLE partition_state IN ROW EXCLUSIVE MODE"
REGISTRY_SQL = "SELECT key_name, column_name FROM tag_facet WHERE projecting IS TRUE ORDER BY column_name"


def load_projections(conn: Connection) -> tuple[Projection, ...]:
    """The ``(key_name, column_name)`` pairs a write in this transaction must fill.

    On PostgreSQL first takes ``ROW EXCLUSIVE`` on ``partition_state`` (see the module
    docstring); call it inside the write transaction, before writing state rows.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(LOCK_SQL)
    rows = conn.execute(
        sa.select(tag_facet.c.key_name, tag_facet.c.column_name)
        .where(tag_facet.c.projecting.is_(True))
        .order_by(tag_facet.c.column_name)
    ).all()
    return projections_from_rows(rows)


def queue_load_projections(pg: Any) -> Any:
    """:func:`load_projections` on a psycopg connection in pipeline mode: queues ``LOCK TABLE``
    and then, as its own statement (a new snapshot), the registry read; returns the cursor to
    fetch after the pipeline syncs (rows for :func:`projections_from_rows`)."""
    pg.execute(LOCK_SQL)
    return pg.execute(REGISTRY_SQL)


def projections_from_rows(rows: Iterable[Sequence[str]]) -> tuple[Projection, ...]:
    """``(key_name, column_name)`` registry rows as projections."""
    return tuple((key_name, column_name) for key_name, column_name in rows)


def table_for(projections: tuple[Projection, ...]) -> sa.Table:
    """``partition_state`` with the projections' columns, for the write statement."""
    return state_table_with(tuple(column for _, column in projections))


def project(row: dict[str, Any], projections: tuple[Projection, ...]) -> dict[str, Any]:
    """``row`` (a state row with ``tags``) plus one value per projected column (None when absent)."""
    tags = row.get("tags") or {}
    return {**row, **{column: tags.get(key) for key, column in projections}}


def project_columns(
    tags: Sequence[dict[str, str] | None], projections: tuple[Projection, ...]
) -> list[list[str | None]]:
    """Column-wise :func:`project`: per projection, the value of its tag in each row's ``tags``."""
    return [[(t or {}).get(key) for t in tags] for key, _ in projections]
