"""The work of the store's write transactions: read, decide (``decisions``), write.

Recording a batch runs on the portable path (``sql_write``) on SQLite and on PostgreSQL's
pipelined one (``pg_write``: one round trip to read, one to write and commit); a re-point runs
on the portable path on both. The caller runs the work in a write transaction
(``transactions.in_write_transaction``), which commits or rolls back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Connection

from gridcat_pipelines.state import pg_write, sql_write
from gridcat_pipelines.state.codecs import state_from_json
from gridcat_pipelines.state.decisions import (
    Reads,
    RunInfo,
    check_repoint_target,
    check_run_recorded,
    decide,
    repointed,
)
from gridcat_pipelines.state.idempotency import (
    SCOPE_RECORD,
    SCOPE_REPOINT,
    check_stored,
    save_responses,
    stored_responses,
)
from gridcat_pipelines.state.keys import PartitionKey
from gridcat_pipelines.state.models import PartitionState, RecordOutcome, ValidationResult
from gridcat_pipelines.state.transactions import as_sqlalchemy_errors

Clock = Callable[[], datetime]


def record_batch(
    conn: Connection, items: list[ValidationResult], clock: Clock, *, commit: bool = False
) -> list[RecordOutcome]:
    """Decide and write validated ``items`` in the caller's write transaction; their outcomes.

    With ``commit`` on PostgreSQL, the COMMIT rides in the write round trip (the caller's
    SQLAlchemy commit then finds the driver connection idle and sends nothing): pass it only
    when this is the transaction's last step.
    """
    keyed = {i.idempotency_key: i.request_hash() for i in items if i.idempotency_key}
    if conn.dialect.name != "postgresql":
        plan = decide(items, sql_write.read_batch(conn, items, keyed), clock())
        if plan.history:
            sql_write.write_batch(conn, plan, clock)
        return plan.outcomes
    with as_sqlalchemy_errors(conn):
        found = pg_write.read_batch(
            conn.connection.driver_connection,
            [i.key for i in items],
            list(dict.fromkeys((i.key, i.run_id) for i in items)),
            scope=SCOPE_RECORD,
            idempotency_keys=sorted(keyed),
        )
        plan = decide(items, _reads_of(found, keyed), clock())
        if plan.history:
            pg_write.write_batch(
                conn.connection.driver_connection,
                conn.dialect.identifier_preparer.quote_identifier,
                found.projections,
                updates=[(s, found.row_ids[k]) for k, s in plan.changed.items() if k in found.row_ids],
                inserts=[s for k, s in plan.changed.items() if k not in found.row_ids],
                history=plan.history,
                responses=plan.responses,
                scope=SCOPE_RECORD,
                now=clock(),
                commit=commit,
            )
    return plan.outcomes


def _reads_of(found: pg_write.BatchReads, keyed: dict[str, str]) -> Reads:
    """What ``pg_write.read_batch`` found, as the decisions take it (request hashes checked)."""
    return Reads(
        stored=check_stored(found.stored, keyed),
        states=found.states,
        runs={pair: RunInfo(last=last, ever_applied=ever) for pair, (last, ever) in found.runs.items()},
    )


def repoint(
    conn: Connection,
    key: PartitionKey,
    run_id: str,
    expected_version: int,
    clock: Clock,
    *,
    idempotency_key: str | None,
    request_hash: str,
) -> PartitionState:
    """Make ``run_id`` authoritative for ``key`` in the caller's write transaction; the new
    state (or the stored one, for an idempotency key seen before). Checks and errors as
    ``StateStore.set_authoritative`` says."""
    idem = idempotency_key
    if idem is not None:
        stored = stored_responses(conn, SCOPE_REPOINT, {idem: request_hash})
        if idem in stored:
            return state_from_json(stored[idem]["state"])
    current = check_repoint_target(key, sql_write.lock_states(conn, [key]).get(key), expected_version)
    info = check_run_recorded(key, run_id, sql_write.run_infos(conn, [(key, run_id)]).get((key, run_id)))
    sql_write.check_not_retired(conn, key, run_id)
    state, row = repointed(current, run_id, info, clock(), idem)
    sql_write.write_states(conn, {key: state}, existing={key})
    (row["change_seq"],) = sql_write.take_change_seqs(conn, 1)
    sql_write.insert_history(conn, [row])
    if idem is not None:
        save_responses(conn, SCOPE_REPOINT, [(idem, request_hash, {"state": state.to_json()})], clock())
    return state
