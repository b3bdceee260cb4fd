"""PostgreSQL's write path for ``StateStore.record_results``: set-based and pipelined.

One call costs two round trips, COMMIT included, whatever the batch size (a large batch that
finds existing rows, one more):

1. **read** (:func:`read_batch`): the projector's ``LOCK TABLE`` and facet-registry read,
   the stored idempotency responses, ``SELECT ... FOR UPDATE`` of the existing state rows
   (key order, so writers never deadlock), then the last history row of every offered
   ``(key, run)``. The statements travel in one psycopg pipeline but stay separate
   statements, executed in order, each with its own READ COMMITTED snapshot: the history
   read starts after the row locks are held, so it sees every result committed by the writer
   that held them. (One statement joining both would read history from a snapshot taken
   before it waited for the locks, and miss that writer's result.) A large batch reads the
   history afterwards, only for the keys that have a row.
2. **write** (:func:`write_batch`, COMMIT queued last by ``record_results``): one ``UPDATE ... FROM unnest(...)`` for the locked rows,
   one ``INSERT ... SELECT FROM unnest(...)`` for new keys (a concurrent insert of the same
   key raises a unique violation, and the caller retries the transaction), one ``INSERT``
   of all history rows that takes its change seqs from the counter in the same statement
   (the counter row stays locked until commit: feed order is commit order), then the
   idempotency responses.

Rows travel as one array parameter per column, so each statement's text depends only on
the projected facet columns; psycopg prepares it after a few runs. The INSERTs then run a
generic plan (there is only one way to run them, and planning them was most of the planning
time of a single write); the statements that look rows up keep the engine's custom plans: a
generic plan is made once, possibly while the table is still small, and was measured keeping
a sequential scan per key as the table grew (batches fell from 13,000 to 1,000 states/s).
Runs on the psycopg connection under the caller's SQLAlchemy transaction, which commits or
rolls back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import psycopg

from gridcat_pipelines.state.keys import PartitionKey
from gridcat_pipelines.state.models import PartitionState
from gridcat_pipelines.tag_facets import projector

Projections = tuple[projector.Projection, ...]
RunPair = tuple[PartitionKey, str]

_KEY_ARRAYS = "%b::text[], %b::text[], %b::text[], %b::date[]"
_KEY_MATCH = (
    "{a}.source = {b}.source AND {a}.customer_id = {b}.customer_id"
    " AND {a}.query_name = {b}.query_name AND {a}.logical_date = {b}.logical_date"
)
_STATE_COLUMNS = (
    "source customer_id query_name logical_date status current_run_id schema_version"
    " record_count updated_at error_message attempt_count tags version"
).split()
_STATE_TYPES = (
    "text text text date text text text bigint timestamptz text integer text bigint".split()
)
_HISTORY_COLUMNS = (
    "source customer_id query_name logical_date run_id outcome status schema_version"
    " record_count error_message tags result_hash state_version recorded_at idempotency_key"
).split()
_HISTORY_TYPES = (
    "text text text date text text text text bigint text text text bigint timestamptz text".split()
)
_JSON_COLUMNS = frozenset({"tags"})  # travel as text, stored as jsonb

# Both reads walk the wanted keys and probe an index per key (LATERAL subqueries the planner
# cannot flatten into a join: a join lets stale statistics pick a hash join over the whole
# table). Rows are locked in the order of the wanted keys, which read_batch sorts, so
# concurrent writers lock in the same order.
#
# The state probe states key equality as ``=`` on source and customer_id and as ``>= AND <=``
# on query_name and logical_date. Same rows, and the primary key still bounds its scan to the
# one key; but partition_state_query_date_idx (query_name, logical_date), which cannot use the
# first two, now looks unselective to the planner. With plain ``=`` everywhere, a table without
# statistics (before its first ANALYZE) gets that smaller index for the probe, which then visits
# every customer's row of the date for each wanted key.
LOCK_STATES = f"""
SELECT p.*
FROM unnest({_KEY_ARRAYS}) AS w(source, customer_id, query_name, logical_date)
CROSS JOIN LATERAL (
    SELECT {', '.join(_STATE_COLUMNS)}, p.ctid::text AS row_id FROM partition_state AS p
    WHERE p.source = w.source AND p.customer_id = w.customer_id
      AND p.query_name >= w.query_name AND p.query_name <= w.query_name
      AND p.logical_date >= w.logical_date AND p.logical_date <= w.logical_date
    FOR UPDATE
) AS p"""

RUN_HISTORY = f"""
SELECT w.source, w.customer_id, w.query_name, w.logical_date, w.run_id,
       h.status, h.schema_version, h.record_count, h.error_message, h.tags, h.result_hash,
       e.ever_applied
FROM unnest({_KEY_ARRAYS}, %b::text[]) AS w(source, customer_id, query_name, logical_date, run_id)
CROSS JOIN LATERAL (
    SELECT * FROM partition_state_history AS h
    WHERE {_KEY_MATCH.format(a='h', b='w')} AND h.run_id = w.run_id
    ORDER BY h.id DESC
    LIMIT 1
) AS h
CROSS JOIN LATERAL (
    SELECT bool_or(a.outcome IN ('applied', 'repointed')) AS ever_applied
    FROM partition_state_history AS a
    WHERE {_KEY_MATCH.format(a='a', b='w')} AND a.run_id = w.run_id
) AS e"""

INSERT_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan"  # see the module docstring
DEFAULT_PLANS = "SET LOCAL plan_cache_mode TO DEFAULT"

STORED_RESPONSES = """
SELECT idempotency_key, request_hash, response FROM idempotency_record
WHERE scope = %s AND idempotency_key = ANY(%b::text[])"""

SAVE_RESPONSES = """
INSERT INTO idempotency_record (scope, idempotency_key, request_hash, response, created_at)
SELECT %s, r.k, r.h, r.response::jsonb, %s
FROM unnest(%b::text[], %b::text[], %b::text[]) AS r(k, h, response)"""

_RUN_LAST_FIELDS = ("status", "schema_version", "record_count", "error_message", "tags", "result_hash")


@dataclass
class BatchReads:
    """What the read round trip found (see the module docstring)."""

    projections: Projections
    stored: list[tuple[str, str, dict[str, Any]]]  # (idempotency key, request hash, response)
    states: dict[PartitionKey, PartitionState]
    row_ids: dict[PartitionKey, str]  # ctid of each locked row: stable until we commit
    runs: dict[RunPair, tuple[dict[str, Any], bool]]  # last history row, ever applied


SPECULATIVE_HISTORY_MAX = 16  # (key, run) pairs whose history is read in the lock round trip


def read_batch(
    pg: psycopg.Connection,
    keys: Sequence[PartitionKey],
    pairs: Sequence[RunPair],
    *,
    scope: str,
    idempotency_keys: Sequence[str],
) -> BatchReads:
    """Lock and read everything one ``record_results`` call decides on.

    A small call (up to ``SPECULATIVE_HISTORY_MAX`` pairs) reads the history of all its pairs
    in the same round trip as the locks; a larger one reads it afterwards, only for keys that
    turned out to have a row (often none: a batch of new partitions), in a second round trip.
    ``runs`` holds only pairs whose key has a state row (a key without one has no history).
    """
    ordered = sorted(set(keys), key=PartitionKey.as_tuple)
    speculate = len(pairs) <= SPECULATIVE_HISTORY_MAX
    with pg.pipeline():  # leaving the block syncs: the one round trip
        registry = projector.queue_load_projections(pg)
        stored = pg.execute(STORED_RESPONSES, (scope, list(idempotency_keys))) if idempotency_keys else None
        locked = pg.execute(LOCK_STATES, _key_arrays(ordered))
        history = _queue_run_history(pg, pairs) if speculate else None
    rows = locked.fetchall()
    states = {state.key: state for state in map(_state_from_tuple, rows)}
    if not speculate and states:
        history = _queue_run_history(pg, [(key, run) for key, run in pairs if key in states])
    return BatchReads(
        projections=projector.projections_from_rows(registry.fetchall()),
        stored=[] if stored is None else stored.fetchall(),
        states=states,
        row_ids={PartitionKey(*row[:4]): row[-1] for row in rows},
        runs={} if history is None else _runs_from_rows(history.fetchall(), states),
    )


def _queue_run_history(pg: psycopg.Connection, pairs: Sequence[RunPair]) -> psycopg.Cursor | None:
    """Run (or in a pipeline, queue) the history read of ``pairs``, a statement after the row
    locks; its cursor, None without pairs."""
    if not pairs:
        return None
    return pg.execute(RUN_HISTORY, (*_key_arrays([k for k, _ in pairs]), [r for _, r in pairs]))


def write_batch(
    pg: psycopg.Connection,
    quote: Callable[[str], str],
    projections: Projections,
    *,
    updates: Sequence[tuple[PartitionState, str]],
    inserts: Sequence[PartitionState],
    history: Sequence[dict[str, Any]],
    responses: Sequence[tuple[str, str, dict[str, Any]]],
    scope: str,
    now: datetime,
    commit: bool = False,
) -> None:
    """Write one call's changes in one round trip (errors surface when the pipeline syncs);
    with ``commit``, the COMMIT goes in the same round trip.

    ``updates`` are locked rows with the ``row_ids`` :func:`read_batch` found; ``history``
    rows are in offer order, those with outcome ``applied`` get consecutive change seqs in
    that order. ``quote`` quotes a (validated) projection column name.
    """
    quoted = tuple(quote(column) for _, column in projections)
    with pg.pipeline():
        updated = None
        if updates:
            params = [[row_id for _, row_id in updates], *_state_arrays([s for s, _ in updates], projections)]
            updated = pg.execute(_update_sql(quoted), params)
        pg.execute(INSERT_PLANS)
        applied = sum(1 for row in history if row["outcome"] == "applied")
        params = [*_history_arrays(history), *_new_state_arrays(history, inserts, projections)]
        pg.execute(_history_sql(quoted, bool(applied)), (*params, applied, applied) if applied else params)
        if responses:
            pg.execute(SAVE_RESPONSES, (scope, now, *map(list, zip(*_response_rows(responses)))))
        if commit:
            pg.commit()  # queued behind the writes; syncs, so errors surface here
        else:
            pg.execute(DEFAULT_PLANS)  # for whatever the caller runs next in the transaction
    if updated is not None and updated.rowcount != len(updates):  # cannot happen: rows are locked
        raise RuntimeError(f"updated {updated.rowcount} of {len(updates)} locked state rows")


def _key_arrays(keys: Sequence[PartitionKey]) -> tuple[list[Any], ...]:
    return (
        [k.source for k in keys],
        [k.customer_id for k in keys],
        [k.query_name for k in keys],
        [k.logical_date for k in keys],
    )


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(timezone.utc)


def _state_from_tuple(row: tuple[Any, ...]) -> PartitionState:
    (source, customer_id, query_name, logical_date, status, run_id, schema_version,
     record_count, updated_at, error_message, attempt_count, tags, version, _row_id) = row
    return PartitionState(
        key=PartitionKey(source, customer_id, query_name, logical_date),
        status=status,
        current_run_id=run_id,
        schema_version=schema_version,
        record_count=record_count,
        updated_at=_utc(updated_at),
        error_message=error_message,
        attempt_count=attempt_count,
        version=version,
        tags=dict(tags or {}),
    )


def _runs_from_rows(
    rows: list[tuple[Any, ...]], states: dict[PartitionKey, PartitionState]
) -> dict[RunPair, tuple[dict[str, Any], bool]]:
    runs = {}
    for row in rows:
        key = PartitionKey(*row[:4])
        if key in states:  # read after the locks: history of a key inserted meanwhile is ignored
            runs[(key, row[4])] = (dict(zip(_RUN_LAST_FIELDS, row[5:11])), bool(row[11]))
    return runs


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value) if value else "{}"


def _state_arrays(states: Sequence[PartitionState], projections: Projections) -> list[list[Any]]:
    arrays = [
        [s.key.source for s in states],
        [s.key.customer_id for s in states],
        [s.key.query_name for s in states],
        [s.key.logical_date for s in states],
        [s.status for s in states],
        [s.current_run_id for s in states],
        [s.schema_version for s in states],
        [s.record_count for s in states],
        [s.updated_at for s in states],
        [s.error_message for s in states],
        [s.attempt_count for s in states],
        [_json(s.tags) for s in states],
        [s.version for s in states],
    ]
    return arrays + projector.project_columns([s.tags for s in states], projections)


def _history_arrays(rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
    arrays = [[_json(r[c]) if c in _JSON_COLUMNS else r[c] for r in rows] for c in _HISTORY_COLUMNS]
    ordinal, applied_ordinals = 0, []
    for row in rows:
        if row["outcome"] == "applied":
            ordinal += 1
            applied_ordinals.append(ordinal)
        else:
            applied_ordinals.append(None)
    return [*arrays, applied_ordinals]


def _response_rows(responses: Sequence[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str, str]]:
    return [(key, request_hash, json.dumps(body)) for key, request_hash, body in responses]


def _unnest(names: Sequence[str], types: Sequence[str], *, ordinality: bool = False) -> str:
    """``unnest(%s::t1[], ...) AS u(n1, ...)``, with ``WITH ORDINALITY`` as ``u.ord``."""
    arrays = ", ".join(f"%b::{t}[]" for t in types)
    if ordinality:
        return f"unnest({arrays}) WITH ORDINALITY AS u({', '.join([*names, 'ord'])})"
    return f"unnest({arrays}) AS u({', '.join(names)})"


def _value(name: str) -> str:
    return f"u.{name}::jsonb" if name in _JSON_COLUMNS else f"u.{name}"


@lru_cache(maxsize=64)
def _update_sql(quoted: tuple[str, ...]) -> str:
    """UPDATE of locked rows from arrays: by row id (a TID scan; the key must still match),
    then the state columns, then the (quoted) projected columns."""
    aliases = [f"f{i}" for i in range(len(quoted))]
    sets = [f"{c} = {_value(c)}" for c in _STATE_COLUMNS[4:]]
    sets += [f"{q} = u.{a}" for q, a in zip(quoted, aliases)]
    source = _unnest(["row_id", *_STATE_COLUMNS, *aliases], ["text", *_STATE_TYPES, *["text"] * len(quoted)])
    return (
        f"UPDATE partition_state AS p SET {', '.join(sets)} FROM {source}"
        f" WHERE p.ctid = u.row_id::tid AND {_KEY_MATCH.format(a='p', b='u')}"
    )


_NEW_STATE_COLUMNS = ("new_state", "attempt_count", "state_tags")
_NEW_STATE_TYPES = ("boolean", "integer", "text")


def _new_state_arrays(
    history: Sequence[dict[str, Any]], inserts: Sequence[PartitionState], projections: Projections
) -> list[list[Any]]:
    """Per history row: whether it is the last applied offer of a key the batch inserts, and
    then that new state's attempt count, tags and projected values (else NULLs).

    The rest of a new state is its last applied offer (status, run, schema version, record
    count, error, timestamp, version): one INSERT writes both from the same arrays.
    """
    row_of = {}
    for index, row in enumerate(history):
        if row["outcome"] == "applied":
            row_of[(row["source"], row["customer_id"], row["query_name"], row["logical_date"])] = index
    marked: list[PartitionState | None] = [None] * len(history)
    for state in inserts:
        index = row_of[state.key.as_tuple()]
        _check_state_is_offer(state, history[index])
        marked[index] = state
    projected = projector.project_columns([None if s is None else s.tags for s in marked], projections)
    return [
        [s is not None for s in marked],
        [None if s is None else s.attempt_count for s in marked],
        [None if s is None else _json(s.tags) for s in marked],
        *projected,
    ]


def _check_state_is_offer(state: PartitionState, row: dict[str, Any]) -> None:
    """A new state must be its last applied offer (see :func:`_new_state_arrays`)."""
    offered = (row["status"], row["run_id"], row["schema_version"], row["record_count"],
               row["error_message"], row["recorded_at"], row["state_version"])
    held = (state.status, state.current_run_id, state.schema_version, state.record_count,
            state.error_message, state.updated_at, state.version)
    if offered != held:
        raise RuntimeError(f"new state of {state.key} is not its last applied offer")


@lru_cache(maxsize=64)
def _history_sql(quoted: tuple[str, ...], takes_seqs: bool) -> str:
    """INSERT of history rows in offer order and, before it, of the new states (see
    :func:`_new_state_arrays`; no ON CONFLICT: a concurrent insert of the key must fail and
    retry). With ``takes_seqs`` (last two parameters: how many), applied rows get the next
    change seqs from the counter, which is updated only after the new states are in (its
    condition waits for them), as separate statements would: a writer never holds the counter
    while it waits for another writer's uncommitted insert of the same key."""
    aliases = [f"f{i}" for i in range(len(quoted))]
    names = [*_HISTORY_COLUMNS, "applied_ordinal", *_NEW_STATE_COLUMNS, *aliases]
    types = [*_HISTORY_TYPES, "bigint", *_NEW_STATE_TYPES, *["text"] * len(quoted)]
    values = ", ".join(_value(c) for c in _HISTORY_COLUMNS)
    columns = ", ".join([*_HISTORY_COLUMNS, "change_seq"])
    rows = f"u AS (SELECT * FROM {_unnest(names, types, ordinality=True)})"
    if not takes_seqs:  # nothing applied: no new state either
        return (
            f"WITH {rows} INSERT INTO partition_state_history ({columns})"
            f" SELECT {values}, NULL FROM u ORDER BY u.ord"
        )
    state_values = [
        "u.source", "u.customer_id", "u.query_name", "u.logical_date", "u.status", "u.run_id",
        "u.schema_version", "u.record_count", "u.recorded_at", "u.error_message", "u.attempt_count",
        "u.state_tags::jsonb", "u.state_version", *[f"u.{a}" for a in aliases],
    ]
    return (
        f"WITH {rows},"
        f" ins AS (INSERT INTO partition_state ({', '.join([*_STATE_COLUMNS, *quoted])})"
        f" SELECT {', '.join(state_values)} FROM u WHERE u.new_state RETURNING 1),"
        " seq AS (UPDATE state_change_counter SET last_seq = last_seq + %s"
        " WHERE id = 1 AND (SELECT count(*) FROM ins) >= 0 RETURNING last_seq - %s AS base)"
        f" INSERT INTO partition_state_history ({columns})"
        f" SELECT {values}, seq.base + u.applied_ordinal FROM u CROSS JOIN seq ORDER BY u.ord"
    )
