"""The store's reads outside write transactions: one state, many states, a key's history and
the change feed. Each is one short connection; none takes a lock."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.state.codecs import change_from_row, history_from_row, state_from_row
from gridcat_pipelines.state.key_queries import chunks, key_equals, key_row, restrict
from gridcat_pipelines.state.keys import PartitionKey
from gridcat_pipelines.state.models import HistoryEntry, PartitionState, StateChange
from gridcat_pipelines.state.tables import (
    KEY_COLUMNS,
    partition_state,
    partition_state_history,
    state_change_counter,
)

# The primary-key probe of ``get``: query_name and logical_date as ``>= AND <=`` (same rows),
# so a table without statistics still probes the primary key, not the (query_name,
# logical_date) index (see ``pg_write``).
_GET_ONE = sa.select(partition_state).where(
    partition_state.c.source == sa.bindparam("source"),
    partition_state.c.customer_id == sa.bindparam("customer_id"),
    partition_state.c.query_name >= sa.bindparam("query_name"),
    partition_state.c.query_name <= sa.bindparam("query_name"),
    partition_state.c.logical_date >= sa.bindparam("logical_date"),
    partition_state.c.logical_date <= sa.bindparam("logical_date"),
)


def get(reader: Engine, key: PartitionKey) -> PartitionState:
    """The state of ``key``, implicit ``pending`` without a row: one primary-key probe in one
    round trip on ``reader`` (an autocommit engine on PostgreSQL)."""
    with reader.connect() as conn:
        row = conn.execute(_GET_ONE, key_row(key)).first()
    return PartitionState.implicit_pending(key) if row is None else state_from_row(row)


def get_many(engine: Engine, keys: Iterable[PartitionKey]) -> dict[PartitionKey, PartitionState]:
    """States for several keys at once, in the order given; keys without a row are implicit
    ``pending``."""
    wanted = list(dict.fromkeys(keys))
    found: dict[PartitionKey, PartitionState] = {}
    with engine.connect() as conn:
        for chunk in chunks(wanted):
            query = restrict(
                engine.dialect.name,
                sa.select(partition_state),
                partition_state,
                KEY_COLUMNS,
                [k.as_tuple() for k in chunk],
            )
            for row in conn.execute(query):
                state = state_from_row(row)
                found[state.key] = state
    return {k: found.get(k) or PartitionState.implicit_pending(k) for k in wanted}


def history(engine: Engine, key: PartitionKey, limit: int | None = None) -> list[HistoryEntry]:
    """Every result offered for ``key`` and every re-point, oldest first (at most ``limit``)."""
    query = (
        sa.select(partition_state_history)
        .where(*key_equals(partition_state_history, key))
        .order_by(partition_state_history.c.id)
    )
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [history_from_row(row) for row in conn.execute(query)]


def changes_since(engine: Engine, cursor: int, limit: int = 1000) -> list[StateChange]:
    """Committed state changes with ``seq > cursor``, in feed order, at most ``limit``."""
    if cursor < 0 or limit <= 0:
        raise invalid_argument("cursor must be >= 0 and limit > 0")
    h = partition_state_history
    query = sa.select(h).where(h.c.change_seq > cursor).order_by(h.c.change_seq).limit(limit)
    with engine.connect() as conn:
        return [change_from_row(row) for row in conn.execute(query)]


def last_change_seq(engine: Engine) -> int:
    """The highest committed change seq (0 before the first change)."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(state_change_counter.c.last_seq)).scalar_one())
