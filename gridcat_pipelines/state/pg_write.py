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
2. **write** (:func:`write_batch`, COMMIT queued last by ``record_results``): one statement
   (:func:`_write_sql`) that inserts the new states, updates the locked rows by row id, takes
   the change seqs from the counter (the counter row stays locked until commit: feed order is
   commit order) and inserts all history rows, from one set of arrays; then the idempotency
   responses. A written state is its key's last applied offer plus attempt count and tags, so
   the history arrays carry it.

Rows travel as one array parameter per column, so each statement's text depends only on
the projected facet columns; psycopg prepares it after a few runs. The write statement then
runs a generic plan with sequential scans ruled out: it reaches partition_state only by row id
(a TID scan), so one plan is right at any table size, and planning it was most of a single
write's planning time. The reads keep the engine's custom plans: a generic plan is made once,
possibly while the table is still small, and was measured keeping a sequential scan per key
as the table grew (batches fell from 13,000 to 1,000 states/s).
Runs on the psycopg connection under the caller's SQLAlchemy transaction, which commits or
rolls back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import psycopg

from gridcat_pipelines.state import projector
from gridcat_pipelines.state.keys import PartitionKey
from gridcat_pipelines.state.models import PartitionState

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
_STATE_TYPES = "text text text date text text text bigint timestamptz text integer text bigint".split()
_HISTORY_COLUMNS = (
    "source customer_id query_name logical_date run_id outcome status schema_version"
    " record_count error_message tags result_hash state_version recorded_at idempotency_key"
).split()
_HISTORY_TYPES = "text text text date text text text text bigint text text text bigint timestamptz text".split()
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
    SELECT {", ".join(_STATE_COLUMNS)}, p.ctid::text AS row_id FROM partition_state AS p
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
    WHERE {_KEY_MATCH.format(a="h", b="w")} AND h.run_id = w.run_id
    ORDER BY h.id DESC
    LIMIT 1
) AS h
CROSS JOIN LATERAL (
    SELECT bool_or(a.outcome IN ('applied', 'repointed')) AS ever_applied
    FROM partition_state_history AS a
    WHERE {_KEY_MATCH.format(a="a", b="w")} AND a.run_id = w.run_id
) AS e"""

# The write statement runs a generic plan with sequential scans ruled out (see the module
# docstring): it reaches partition_state only by row id, so its plan is right at any size.
WRITE_PLANS = (
    "SELECT set_config('plan_cache_mode', 'force_generic_plan', true), set_config('enable_seqscan', 'off', true)"
)
DEFAULT_PLANS = ("SET LOCAL plan_cache_mode TO DEFAULT", "SET LOCAL enable_seqscan TO DEFAULT")

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
    applied = sum(1 for row in history if row["outcome"] == "applied")
    params = [*_history_arrays(history), *_state_write_arrays(history, updates, inserts, projections)]
    try:
        with pg.pipeline():
            pg.execute(WRITE_PLANS)
            pg.execute(
                _write_sql(quoted, bool(applied)), (*params, applied, len(updates), applied) if applied else params
            )
            if responses:
                pg.execute(SAVE_RESPONSES, (scope, now, *map(list, zip(*_response_rows(responses)))))
            if commit:
                pg.commit()  # queued behind the writes; syncs, so errors surface here
            else:
                pg.execute(DEFAULT_PLANS[0])  # for whatever the caller runs next in the transaction
                pg.execute(DEFAULT_PLANS[1])
    except psycopg.errors.DivisionByZero as exc:  # the guard in _write_sql
        raise RuntimeError("a locked state row was not found by its row id; nothing was written") from exc


def _key_arrays(keys: Sequence[PartitionKey]) -> tuple[list[Any], ...]:
    return (
        [k.source for k in keys],
        [k.customer_id for k in keys],
        [k.query_name for k in keys],
        [k.logical_date for k in keys],
    )


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _state_from_tuple(row: tuple[Any, ...]) -> PartitionState:
    (
        source,
        customer_id,
        query_name,
        logical_date,
        status,
        run_id,
        schema_version,
        record_count,
        updated_at,
        error_message,
        attempt_count,
        tags,
        version,
        _row_id,
    ) = row
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


_STATE_WRITE_COLUMNS = ("state_write", "row_id", "attempt_count", "state_tags")
_STATE_WRITE_TYPES = ("text", "text", "integer", "text")


def _state_write_arrays(
    history: Sequence[dict[str, Any]],
    updates: Sequence[tuple[PartitionState, str]],
    inserts: Sequence[PartitionState],
    projections: Projections,
) -> list[list[Any]]:
    """Per history row: whether the batch writes its key's state from it (``insert``/``update``,
    on the key's last applied offer), and then the locked row's id, the state's attempt count,
    tags and projected values (else NULLs).

    The rest of a written state is that offer (status, run, schema version, record count,
    error, timestamp, version): one statement writes states and history from the same arrays.
    """
    row_of = {}
    for index, row in enumerate(history):
        if row["outcome"] == "applied":
            row_of[(row["source"], row["customer_id"], row["query_name"], row["logical_date"])] = index
    write: list[str | None] = [None] * len(history)
    row_ids: list[str | None] = [None] * len(history)
    marked: list[PartitionState | None] = [None] * len(history)
    for kind, state, row_id in [("update", s, r) for s, r in updates] + [("insert", s, None) for s in inserts]:
        index = row_of[state.key.as_tuple()]
        _check_state_is_offer(state, history[index])
        write[index], row_ids[index], marked[index] = kind, row_id, state
    projected = projector.project_columns([None if s is None else s.tags for s in marked], projections)
    return [
        write,
        row_ids,
        [None if s is None else s.attempt_count for s in marked],
        [None if s is None else _json(s.tags) for s in marked],
        *projected,
    ]


def _check_state_is_offer(state: PartitionState, row: dict[str, Any]) -> None:
    """A written state must be its last applied offer (see :func:`_state_write_arrays`)."""
    offered = (
        row["status"],
        row["run_id"],
        row["schema_version"],
        row["record_count"],
        row["error_message"],
        row["recorded_at"],
        row["state_version"],
    )
    held = (
        state.status,
        state.current_run_id,
        state.schema_version,
        state.record_count,
        state.error_message,
        state.updated_at,
        state.version,
    )
    if offered != held:
        raise RuntimeError(f"state of {state.key} is not its last applied offer")


@lru_cache(maxsize=64)
def _write_sql(quoted: tuple[str, ...], takes_seqs: bool) -> str:
    """The states and history rows of one call in one statement, from the history arrays plus
    :func:`_state_write_arrays` (projected columns ``quoted``), in this order:

    1. ``ins``: new states (no ON CONFLICT: a concurrent insert of the key fails and retries);
    2. ``upd``: locked rows by row id (a TID scan; the key must still match);
    3. ``seq``: with ``takes_seqs`` (last three parameters: applied rows, updated rows, applied
       rows), the counter, only after 1 and 2 are done (its condition waits for them, so a
       writer never holds the counter while waiting for another's insert of the same key); if
       a locked row was not found by its row id (cannot happen: nobody else can move it), the
       condition divides by zero and the transaction fails (:func:`write_batch` says why);
    4. the history rows in offer order, applied ones with consecutive change seqs.
    """
    aliases = [f"f{i}" for i in range(len(quoted))]
    names = [*_HISTORY_COLUMNS, "applied_ordinal", *_STATE_WRITE_COLUMNS, *aliases]
    types = [*_HISTORY_TYPES, "bigint", *_STATE_WRITE_TYPES, *["text"] * len(quoted)]
    values = ", ".join(_value(c) for c in _HISTORY_COLUMNS)
    columns = ", ".join([*_HISTORY_COLUMNS, "change_seq"])
    rows = f"u AS (SELECT * FROM {_unnest(names, types, ordinality=True)})"
    if not takes_seqs:  # nothing applied: no state to write either
        return (
            f"WITH {rows} INSERT INTO partition_state_history ({columns}) SELECT {values}, NULL FROM u ORDER BY u.ord"
        )
    state = {
        "status": "u.status",
        "current_run_id": "u.run_id",
        "schema_version": "u.schema_version",
        "record_count": "u.record_count",
        "updated_at": "u.recorded_at",
        "error_message": "u.error_message",
        "attempt_count": "u.attempt_count",
        "tags": "u.state_tags::jsonb",
        "version": "u.state_version",
        **{q: f"u.{a}" for q, a in zip(quoted, aliases)},
    }
    key = "source, customer_id, query_name, logical_date"
    inserted = [*key.split(", "), *state]
    return (
        f"WITH {rows},"
        f" ins AS (INSERT INTO partition_state ({', '.join(inserted)})"
        f" SELECT u.{', u.'.join(key.split(', '))}, {', '.join(state.values())}"
        " FROM u WHERE u.state_write = 'insert' RETURNING 1),"
        f" upd AS (UPDATE partition_state AS p SET {', '.join(f'{c} = {v}' for c, v in state.items())}"
        " FROM u WHERE u.state_write = 'update' AND p.ctid = u.row_id::tid"
        f" AND ({'p.' + key.replace(', ', ', p.')}) IS NOT DISTINCT FROM ({'u.' + key.replace(', ', ', u.')})"
        " RETURNING 1),"
        " seq AS (UPDATE state_change_counter SET last_seq = last_seq + %s WHERE id = 1"
        " AND (SELECT count(*) FROM ins) >= 0"
        " AND 1 / (CASE WHEN (SELECT count(*) FROM upd) = %s THEN 1 ELSE 0 END) = 1"
        " RETURNING last_seq - %s AS base)"
        f" INSERT INTO partition_state_history ({columns})"
        f" SELECT {values}, seq.base + u.applied_ordinal FROM u CROSS JOIN seq ORDER BY u.ord"
    )
