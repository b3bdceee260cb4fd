"""The partition state store (seed 002), with seed 001's write conventions.

One write path for validators and operator tooling, :meth:`StateStore.record_results`.
Each offered result is decided in this order:

1. a result equal to the last one offered for the same run is ``replayed`` and changes
   nothing (checked first, so a retried verdict of a newer run does not undo an operator's
   re-point to an older one);
2. a result for a run older than the state's current run is recorded in history as
   ``superseded`` and never applied;
3. anything else is ``applied``: the row's ``version`` goes up by one and the change gets the
   next ``change_seq`` of the change feed.

Every offer is a history row. Change seqs come from a one-row counter locked until commit,
so feed order is commit order and a reader following ``change_seq`` never skips a change.

The decisions are one piece of Python for both dialects; on PostgreSQL the reads before and
the writes after them go through ``pg_write`` (pipelined, set-based statements).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, TypeVar

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.engine import Connection, Engine

from gridcat_pipelines.errors import (
    GridcatError,
    failed_precondition,
    invalid_argument,
    not_found,
)
from gridcat_pipelines.run_ids import parse_run_id
from gridcat_pipelines.state import migrations, pg_write
from gridcat_pipelines.state.db import create_state_engine, dialect_insert, write_connection
from gridcat_pipelines.state.keys import PartitionKey
from gridcat_pipelines.state.models import (
    OUTCOME_APPLIED,
    OUTCOME_REPLAYED,
    OUTCOME_REPOINTED,
    OUTCOME_SUPERSEDED,
    HistoryEntry,
    PartitionState,
    RecordOutcome,
    StateChange,
    StateFilter,
    StatePage,
    ValidationResult,
    check_idempotency_key,
    digest,
)
from gridcat_pipelines.state.page_tokens import decode_token, encode_token
from gridcat_pipelines.tag_facets import filters as facet_filters
from gridcat_pipelines.tag_facets import projector
from gridcat_pipelines.tag_facets.identifiers import quote
from gridcat_pipelines.state.tables import (
    KEY_COLUMNS,
    gridcat_meta,
    idempotency_record,
    partition_state,
    partition_state_history,
    raw_run_tombstone,
    state_change_counter,
)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000
_CHUNK = 500  # keys per IN list / rows per statement
_MAX_ATTEMPTS = 8
_APPLIED_KINDS = (OUTCOME_APPLIED, OUTCOME_REPOINTED)
SCOPE_RECORD = "record_result"
SCOPE_REPOINT = "set_authoritative"

T = TypeVar("T")


@dataclass
class _RunInfo:
    """What the history says about one run of one key."""

    last: dict[str, Any]  # the last history row offered for the run
    ever_applied: bool


@dataclass(frozen=True)
class HeldStates:
    """States held still by :meth:`StateStore.hold`, and the transaction that holds them."""

    conn: Connection
    states: dict[PartitionKey, PartitionState]


_NO_ROW = PartitionState.implicit_pending(PartitionKey("", "", "", date.min))  # key never read


@dataclass
class _Reads:
    """What a write transaction read before deciding: stored idempotent responses (request
    hashes checked), the locked state rows, history of the offered runs of those keys."""

    stored: dict[str, dict[str, Any]]
    states: dict[PartitionKey, PartitionState]
    runs: dict[tuple[PartitionKey, str], _RunInfo]
    projections: tuple[Any, ...] | None = None  # PostgreSQL: read with the locks
    row_ids: dict[PartitionKey, str] = field(default_factory=dict)  # PostgreSQL: locked rows' ctids


@dataclass
class _Plan:
    """What to write and answer for one batch."""

    outcomes: list[RecordOutcome]
    existing: set[PartitionKey]  # keys with a state row before the batch
    changed: dict[PartitionKey, PartitionState] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # in offer order
    responses: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)



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

def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _key_of(row: Any) -> PartitionKey:
    return PartitionKey(row.source, row.customer_id, row.query_name, row.logical_date)


def _state_from_row(row: Any) -> PartitionState:
    return PartitionState(
        key=_key_of(row),
        status=row.status,
        current_run_id=row.current_run_id,
        schema_version=row.schema_version,
        record_count=row.record_count,
        updated_at=row.updated_at,
        error_message=row.error_message,
        attempt_count=row.attempt_count,
        version=row.version,
        tags=dict(row.tags or {}),
    )


def _state_to_row(state: PartitionState) -> dict[str, Any]:
    return {
        "source": state.key.source,
        "customer_id": state.key.customer_id,
        "query_name": state.key.query_name,
        "logical_date": state.key.logical_date,
        "status": state.status,
        "current_run_id": state.current_run_id,
        "schema_version": state.schema_version,
        "record_count": state.record_count,
        "updated_at": state.updated_at,
        "error_message": state.error_message,
        "attempt_count": state.attempt_count,
        "tags": state.tags,
        "version": state.version,
    }


def _check_stored(
    rows: Iterable[tuple[str, str, dict[str, Any]]], keyed: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Stored ``(key, request hash, response)`` rows as ``{key: response}``; a key stored for
    another request than ``keyed`` says is ``INVALID_ARGUMENT``."""
    found = {}
    for key, request_hash, response in rows:
        if request_hash != keyed[key]:
            raise invalid_argument(
                f"idempotency key {key!r} was used with a different request", {"idempotency_key": key}
            )
        found[key] = response
    return found


@contextmanager
def _as_sqlalchemy_errors(conn: Connection) -> Iterator[None]:
    """psycopg errors from statements run on the driver connection (``pg_write``) as the
    SQLAlchemy errors ``conn.execute`` raises, so retries and callers treat them alike; a
    connection the error broke is invalidated."""
    try:
        yield
    except psycopg.Error as exc:
        broken = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)
        if broken:
            conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            "(pipelined write)", None, exc, psycopg.Error, connection_invalidated=broken, dialect=conn.dialect
        ) from exc


def _is_retryable(exc: sa.exc.DBAPIError) -> bool:
    """Unique-key races, deadlocks, serialization failures and lost connections: safe to retry
    the whole transaction (after a connection lost during COMMIT, the retry of a committed
    write is a replay: it changes nothing and says ``replayed``)."""
    if isinstance(exc, sa.exc.IntegrityError) or exc.connection_invalidated:
        return True
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in ("40001", "40P01")


class StateStore:
    """Reads and writes partition state on SQLite or PostgreSQL (no Dagster involved)."""

    def __init__(
        self,
        engine: Engine,
        *,
        check_schema: bool = True,
        clock: Callable[[], datetime] = _utcnow,
    ):
        self.engine = engine
        self._clock = clock
        self._secret: bytes | None = None
        # Single-statement reads need no transaction: on PostgreSQL they run in autocommit,
        # which saves the BEGIN and the ROLLBACK round trips of an implicit transaction.
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT") if engine.dialect.name == "postgresql" else engine
        if check_schema:
            migrations.check_schema(engine)

    @classmethod
    def open(cls, url: str, *, upgrade: bool = False, **kwargs: Any) -> "StateStore":
        """Open the store at ``url``; with ``upgrade=True`` apply missing migrations first."""
        engine = create_state_engine(url)
        if upgrade:
            migrations.upgrade(engine)
        return cls(engine, **kwargs)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()

    # ------------------------------------------------------------------ reads

    def get(self, key: PartitionKey) -> PartitionState:
        """The state of ``key``; implicit ``pending`` (version 0, no run) when no row exists.

        One primary-key probe in one round trip (the hot read of the API and the gate)."""
        with self._reader.connect() as conn:
            row = conn.execute(_GET_ONE, dict(zip(KEY_COLUMNS, key.as_tuple()))).first()
        return PartitionState.implicit_pending(key) if row is None else _state_from_row(row)

    def get_many(self, keys: Iterable[PartitionKey]) -> dict[PartitionKey, PartitionState]:
        """States for several keys at once; keys without a row are implicit ``pending``."""
        wanted = list(dict.fromkeys(keys))
        found: dict[PartitionKey, PartitionState] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(wanted):
                query = self._restrict(
                    sa.select(partition_state), partition_state, KEY_COLUMNS, [k.as_tuple() for k in chunk]
                )
                for row in conn.execute(query):
                    state = _state_from_row(row)
                    found[state.key] = state
        return {k: found.get(k) or PartitionState.implicit_pending(k) for k in wanted}

    def history(self, key: PartitionKey, limit: int | None = None) -> list[HistoryEntry]:
        """Every result offered for ``key`` and every re-point, oldest first."""
        query = (
            sa.select(partition_state_history)
            .where(*self._key_equals(partition_state_history, key))
            .order_by(partition_state_history.c.id)
        )
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [self._history_from_row(row) for row in conn.execute(query)]

    def list_states(
        self,
        state_filter: StateFilter | None = None,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        filters: Sequence[Any] | None = None,
    ) -> StatePage:
        """One page of state rows in key order, filtered by base columns and tag-facet filters.

        ``page_size`` defaults to 20 and is capped at 1000 (negative is ``INVALID_ARGUMENT``);
        the token resumes after the last key and only with the same filters.
        ``filters`` are seed 000's ``[{key, op: "EQ", value: {stringValue}}]`` on promoted tag
        keys (see ``gridcat_pipelines.tag_facets.filters``): an ENABLED facet is served from its
        column, a facet still being promoted or backfilled from the JSON tags; any other op, an
        unknown or a DISABLED key is ``INVALID_ARGUMENT`` (detail ``"key not promoted"``).
        """
        state_filter = state_filter or StateFilter()
        size = self._page_size(page_size)
        requested = facet_filters.parse_filters(filters)
        fingerprint = {"kind": "states", **state_filter.fingerprint()}
        if requested:
            fingerprint["facet_filters"] = [f.fingerprint() for f in requested]
        after = decode_token(self._page_secret(), page_token, fingerprint) if page_token else None
        with self.engine.connect() as conn:
            resolved = facet_filters.resolve(conn, requested)
            table = resolved.table
            conditions = self._filter_conditions(state_filter, table) + resolved.conditions
            if after is not None:
                conditions.append(self._after_key(after, table))
            query = (
                sa.select(*[table.c[c.name] for c in partition_state.columns])
                .where(*conditions)
                .order_by(*[table.c[c] for c in KEY_COLUMNS])
                .limit(size + 1)
            )
            rows = conn.execute(query).all()
        states = [_state_from_row(r) for r in rows[:size]]
        token = ""
        if len(rows) > size:
            last = states[-1].key
            token = encode_token(
                self._page_secret(),
                [last.source, last.customer_id, last.query_name, last.logical_date.isoformat()],
                fingerprint,
            )
        if not requested:
            return StatePage(states=states, next_page_token=token)
        return StatePage(
            states=states,
            next_page_token=token,
            applied_facets=resolved.applied_facets,
            non_facet_filters=resolved.non_facet_filters,
        )

    def changes_since(self, cursor: int, limit: int = 1000) -> list[StateChange]:
        """Committed state changes with ``seq > cursor``, in feed order, at most ``limit``."""
        if cursor < 0 or limit <= 0:
            raise invalid_argument("cursor must be >= 0 and limit > 0")
        h = partition_state_history
        query = (
            sa.select(h)
            .where(h.c.change_seq > cursor)
            .order_by(h.c.change_seq)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                StateChange(
                    seq=row.change_seq,
                    key=_key_of(row),
                    kind=row.outcome,
                    status=row.status,
                    run_id=row.run_id,
                    version=row.state_version,
                    record_count=row.record_count,
                    changed_at=row.recorded_at,
                )
                for row in conn.execute(query)
            ]

    def last_change_seq(self) -> int:
        """The highest committed change seq (0 before the first change)."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(state_change_counter.c.last_seq)).scalar_one())

    # ----------------------------------------------------------------- writes

    def record_result(self, result: ValidationResult) -> RecordOutcome:
        """Offer one validation result; see :meth:`record_results`."""
        return self.record_results([result])[0]

    def record_results(self, results: Sequence[ValidationResult]) -> list[RecordOutcome]:
        """Offer validation results in order, in one transaction; one outcome per result.

        All or nothing: a bad result (``INVALID_ARGUMENT``), an expected version that moved
        (``FAILED_PRECONDITION``) or an idempotency key reused with another request
        (``INVALID_ARGUMENT``) fails the whole call and writes nothing.
        """
        now = self._clock()
        items = [r.validated(now) for r in results]
        if not items:
            return []
        return self._in_write_transaction(lambda conn: self._record_batch(conn, items, commit=True))

    def set_authoritative(
        self,
        key: PartitionKey,
        run_id: str,
        expected_version: int,
        *,
        idempotency_key: str | None = None,
    ) -> PartitionState:
        """Operator re-point: make ``run_id`` (a run with a recorded result) authoritative.

        The state takes that run's last recorded result. ``expected_version`` must equal the
        row's version (``FAILED_PRECONDITION`` otherwise); an unknown key or a run never
        offered for it is ``NOT_FOUND``; a run raw retention deleted, or one older than a run it
        deleted, is ``FAILED_PRECONDITION`` (retention deletes only runs older than the current
        one, so the current run stays newer than every deleted run and no deleted run can be
        applied or re-pointed to again).
        """
        run_id = parse_run_id(run_id)
        if isinstance(expected_version, bool) or not isinstance(expected_version, int) or expected_version < 0:
            raise invalid_argument(f"expected_version {expected_version!r} must be a non-negative integer")
        idem = check_idempotency_key(idempotency_key)
        request_hash = digest(
            {**key.to_json(), "run_id": run_id, "expected_version": expected_version}
        )

        def work(conn: Connection) -> PartitionState:
            if idem is not None:
                stored = self._idempotent_response(conn, SCOPE_REPOINT, {idem: request_hash})
                if idem in stored:
                    return self._state_from_json(stored[idem]["state"])
            current = self._lock_states(conn, [key]).get(key)
            if current is None:
                raise not_found(f"no state for {key}: nothing to re-point")
            if current.version != expected_version:
                raise failed_precondition(
                    f"state of {key} is at version {current.version}, not {expected_version}",
                    {"current_version": current.version, "expected_version": expected_version},
                )
            info = self._run_infos(conn, [(key, run_id)]).get((key, run_id))
            if info is None:
                raise not_found(f"run {run_id} has no recorded result for {key}")
            self._check_not_retired(conn, key, run_id)
            last = info.last
            new_state = PartitionState(
                key=key,
                status=last["status"],
                current_run_id=run_id,
                schema_version=last["schema_version"],
                record_count=last["record_count"],
                updated_at=self._clock(),
                error_message=last["error_message"],
                attempt_count=current.attempt_count + (0 if info.ever_applied else 1),
                version=current.version + 1,
                tags=current.tags if last["tags"] is None else dict(last["tags"]),
            )
            self._write_states(conn, {key: new_state}, existing={key})
            (seq,) = self._take_change_seqs(conn, 1)
            self._insert_history(
                conn,
                [
                    {
                        **{c: last[c] for c in ("status", "schema_version", "record_count", "error_message", "tags", "result_hash")},
                        **self._key_row(key),
                        "run_id": run_id,
                        "outcome": OUTCOME_REPOINTED,
                        "state_version": new_state.version,
                        "change_seq": seq,
                        "recorded_at": new_state.updated_at,
                        "idempotency_key": idem,
                    }
                ],
            )
            if idem is not None:
                self._save_responses(
                    conn, SCOPE_REPOINT, [(idem, request_hash, {"state": new_state.to_json()})]
                )
            return new_state

        return self._in_write_transaction(work)

    @contextmanager
    def hold(self, keys: Sequence[PartitionKey]) -> Iterator["HeldStates"]:
        """Hold the states of ``keys`` still for the block: yields them, read under a write lock
        (PostgreSQL: the state rows ``FOR UPDATE``, in key order; SQLite: the database write
        lock), so no state write to these keys commits until the block ends.

        The block may write its own bookkeeping on ``held.conn``; it commits when the block
        ends normally and rolls back when it raises. Keep the block short: every writer of these
        partitions waits for it (on SQLite, every writer).
        """
        wanted = sorted(set(keys))
        with write_connection(self.engine) as conn, conn.begin():
            found = self._lock_states(conn, wanted) if wanted else {}
            yield HeldStates(conn, {k: found.get(k) or PartitionState.implicit_pending(k) for k in wanted})

    # --------------------------------------------------------------- internals

    def _check_not_retired(self, conn: Connection, key: PartitionKey, run_id: str) -> None:
        """``FAILED_PRECONDITION`` when retention deleted ``run_id``, or a newer run, of ``key``
        (so no deleted run can become current again; see ``raw_run_tombstone``)."""
        t = raw_run_tombstone
        newest = conn.execute(
            sa.select(sa.func.max(t.c.run_id)).where(*self._key_equals(t, key))
        ).scalar_one_or_none()
        if newest is not None and run_id <= newest:
            detail = "was deleted" if run_id == newest else f"is older than run {newest}, which was deleted"
            raise failed_precondition(
                f"run {run_id} of {key} {detail} by raw retention; re-point to a newer run "
                "(a re-point never goes back past a run retention deleted)",
                {"retention_deleted_run_id": newest},
            )

    def _in_write_transaction(self, work: Callable[[Connection], T]) -> T:
        for attempt in range(_MAX_ATTEMPTS):
            try:
                with write_connection(self.engine) as conn, conn.begin():
                    return work(conn)
            except sa.exc.DBAPIError as exc:
                if not _is_retryable(exc) or attempt == _MAX_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0, 0.005 * (2**attempt)))
        raise AssertionError("unreachable")

    def _record_batch(
        self, conn: Connection, items: list[ValidationResult], *, commit: bool = False
    ) -> list[RecordOutcome]:
        """Decide and write ``items`` in the caller's write transaction, which commits.

        With ``commit`` on PostgreSQL, the COMMIT rides in the write round trip (the caller's
        SQLAlchemy commit then finds the driver connection idle and sends nothing): pass it only
        when this is the transaction's last step.
        """
        keyed = {i.idempotency_key: i.request_hash() for i in items if i.idempotency_key}
        if self.dialect != "postgresql":
            plan = self._decide(items, self._read_batch(conn, items, keyed), self._clock())
            if plan.history:
                self._write_batch(conn, plan)
            return plan.outcomes
        with _as_sqlalchemy_errors(conn):
            reads = self._read_batch_pg(conn, items, keyed)
            plan = self._decide(items, reads, self._clock())
            if plan.history:
                self._write_batch_pg(conn, plan, reads, commit=commit)
        return plan.outcomes

    def _read_batch(self, conn: Connection, items: list[ValidationResult], keyed: dict[str, str]) -> "_Reads":
        """Stored idempotent responses, the locked state rows, what history knows of the runs."""
        stored = self._idempotent_response(conn, SCOPE_RECORD, keyed) if keyed else {}
        keys = sorted({i.key for i in items if not (i.idempotency_key and i.idempotency_key in stored)})
        states = self._lock_states(conn, keys) if keys else {}
        # a key without a state row has no history (the first offer for a key always applies)
        pairs = sorted({(i.key, i.run_id) for i in items if i.key in states})
        return _Reads(stored=stored, states=states, runs=self._run_infos(conn, pairs))

    def _read_batch_pg(self, conn: Connection, items: list[ValidationResult], keyed: dict[str, str]) -> "_Reads":
        """:meth:`_read_batch` in one round trip (see ``pg_write``), with the facet projections."""
        found = pg_write.read_batch(
            conn.connection.driver_connection,
            [i.key for i in items],
            list(dict.fromkeys((i.key, i.run_id) for i in items)),
            scope=SCOPE_RECORD,
            idempotency_keys=sorted(keyed),
        )
        return _Reads(
            stored=_check_stored(found.stored, keyed),
            states=found.states,
            runs={pair: _RunInfo(last=last, ever_applied=ever) for pair, (last, ever) in found.runs.items()},
            projections=found.projections,
            row_ids=found.row_ids,
        )

    def _decide(self, items: list[ValidationResult], reads: "_Reads", now: datetime) -> "_Plan":
        """Each result's outcome, in order, against the evolving state (see the module docstring)."""
        first_in_batch = self._first_of_each_key(items, reads.stored)
        plan = _Plan(outcomes=[None] * len(items), existing=set(reads.states))  # type: ignore[list-item]
        states, runs = dict(reads.states), dict(reads.runs)
        for index, item in enumerate(items):
            idem = item.idempotency_key
            if idem and idem in reads.stored:
                plan.outcomes[index] = self._outcome_from_json(reads.stored[idem])
            elif idem and first_in_batch[idem] != index:
                plan.outcomes[index] = plan.outcomes[first_in_batch[idem]]
            else:
                result = plan.outcomes[index] = self._decide_one(item, states, runs, plan, now)
                if idem:
                    plan.responses.append((idem, item.request_hash(), result.to_json()))
        return plan

    @staticmethod
    def _first_of_each_key(items: list[ValidationResult], stored: dict[str, Any]) -> dict[str, int]:
        """Index of the first item with each idempotency key not answered from ``stored``; a
        later item with the same key and another request is ``INVALID_ARGUMENT``."""
        first: dict[str, int] = {}
        for index, item in enumerate(items):
            idem = item.idempotency_key
            if not idem or idem in stored:
                continue
            if idem not in first:
                first[idem] = index
            elif items[first[idem]].request_hash() != item.request_hash():
                raise invalid_argument(
                    f"idempotency key {idem!r} was used with a different request", {"idempotency_key": idem}
                )
        return first

    def _decide_one(
        self,
        item: ValidationResult,
        states: dict[PartitionKey, PartitionState],
        runs: dict[tuple[PartitionKey, str], _RunInfo],
        plan: "_Plan",
        now: datetime,
    ) -> RecordOutcome:
        """Replayed, superseded or applied: one result against the current state of its key."""
        key = item.key
        current = states.get(key) or _NO_ROW  # a new key: implicit pending (built only if answered)
        if item.expected_version is not None and item.expected_version != current.version:
            raise failed_precondition(
                f"state of {key} is at version {current.version}, not {item.expected_version}",
                {"current_version": current.version, "expected_version": item.expected_version},
            )
        result_hash = item.result_hash()
        info = runs.get((key, item.run_id))
        ever_applied = info is not None and info.ever_applied
        if info is not None and info.last["result_hash"] == result_hash:
            outcome, state = OUTCOME_REPLAYED, current
        elif current.current_run_id is not None and item.run_id < current.current_run_id:
            outcome, state = OUTCOME_SUPERSEDED, current
        else:
            outcome = OUTCOME_APPLIED
            state = PartitionState(
                key=key,
                status=item.status,
                current_run_id=item.run_id,
                schema_version=item.schema_version,
                record_count=item.record_count,
                updated_at=now,
                error_message=item.error_message,
                attempt_count=current.attempt_count + (0 if ever_applied else 1),
                version=current.version + 1,
                tags=dict(current.tags) if item.tags is None else dict(item.tags),
            )
            states[key] = plan.changed[key] = state
        if state is _NO_ROW:
            state = PartitionState.implicit_pending(key)
        row = {
            "source": key.source,
            "customer_id": key.customer_id,
            "query_name": key.query_name,
            "logical_date": key.logical_date,
            "run_id": item.run_id,
            "outcome": outcome,
            "status": item.status,
            "schema_version": item.schema_version,
            "record_count": item.record_count,
            "error_message": item.error_message,
            "tags": item.tags,
            "result_hash": result_hash,
            "state_version": state.version,
            "change_seq": None,
            "recorded_at": now,
            "idempotency_key": item.idempotency_key,
        }
        plan.history.append(row)
        runs[(key, item.run_id)] = _RunInfo(last=row, ever_applied=ever_applied or outcome == OUTCOME_APPLIED)
        return RecordOutcome(outcome, state)

    def _write_batch(self, conn: Connection, plan: "_Plan") -> None:
        """States, then the change seqs (locks the counter until commit), then history, responses."""
        applied_rows = [row for row in plan.history if row["outcome"] == OUTCOME_APPLIED]
        if plan.changed:
            self._write_states(conn, plan.changed, existing=plan.existing)
            seqs = self._take_change_seqs(conn, len(applied_rows))
            for row, seq in zip(applied_rows, seqs):
                row["change_seq"] = seq
        self._insert_history(conn, plan.history)
        if plan.responses:
            self._save_responses(conn, SCOPE_RECORD, plan.responses)

    def _write_batch_pg(self, conn: Connection, plan: "_Plan", reads: "_Reads", *, commit: bool) -> None:
        """:meth:`_write_batch` in one round trip, with the projections read under the lock."""
        pg_write.write_batch(
            conn.connection.driver_connection,
            lambda name: quote(conn, name),
            reads.projections or (),
            updates=[(s, reads.row_ids[k]) for k, s in plan.changed.items() if k in reads.row_ids],
            inserts=[s for k, s in plan.changed.items() if k not in reads.row_ids],
            history=plan.history,
            responses=plan.responses,
            scope=SCOPE_RECORD,
            now=self._clock(),
            commit=commit,
        )

    @staticmethod
    def _key_equals(table: sa.Table, key: PartitionKey) -> list[Any]:
        return [table.c[c] == v for c, v in zip(KEY_COLUMNS, key.as_tuple())]

    @staticmethod
    def _key_row(key: PartitionKey) -> dict[str, Any]:
        return dict(zip(KEY_COLUMNS, key.as_tuple()))

    def _lock_states(self, conn: Connection, keys: Sequence[PartitionKey]) -> dict[PartitionKey, PartitionState]:
        """Read (and on PostgreSQL row-lock, in key order) the existing rows of ``keys``."""
        found: dict[PartitionKey, PartitionState] = {}
        ordered = sorted(keys)
        for chunk in _chunks(ordered):
            query = self._restrict(
                sa.select(partition_state), partition_state, KEY_COLUMNS, [k.as_tuple() for k in chunk]
            ).order_by(*[partition_state.c[c] for c in KEY_COLUMNS])
            if self.dialect == "postgresql":
                query = query.with_for_update(of=partition_state)
            for row in conn.execute(query):
                state = _state_from_row(row)
                found[state.key] = state
        return found

    def _run_infos(
        self, conn: Connection, pairs: Sequence[tuple[PartitionKey, str]]
    ) -> dict[tuple[PartitionKey, str], _RunInfo]:
        """For each (key, run): the last history row offered for it and whether it was ever applied."""
        h = partition_state_history
        cols = [h.c[c] for c in KEY_COLUMNS] + [h.c.run_id]
        infos: dict[tuple[PartitionKey, str], _RunInfo] = {}
        for chunk in _chunks(pairs):
            latest = sa.select(
                sa.func.max(h.c.id).label("last_id"),
                sa.func.max(sa.case((h.c.outcome.in_(_APPLIED_KINDS), 1), else_=0)).label("ever_applied"),
            )
            grouped = (
                self._restrict(latest, h, (*KEY_COLUMNS, "run_id"), [(*k.as_tuple(), r) for k, r in chunk])
                .group_by(*cols)
                .subquery()
            )
            query = sa.select(h, grouped.c.ever_applied).join(grouped, h.c.id == grouped.c.last_id)
            for row in conn.execute(query):
                mapping = dict(row._mapping)
                infos[(_key_of(row), row.run_id)] = _RunInfo(
                    last=mapping, ever_applied=bool(mapping.pop("ever_applied"))
                )
        return infos

    def _restrict(self, query: sa.Select, table: sa.Table, names: Sequence[str], rows: list[tuple[Any, ...]]) -> sa.Select:
        """``query`` limited to rows whose ``names`` columns equal one of ``rows``: each row is
        one primary-key (or index) lookup, whatever the table's size.

        The wanted rows travel as one bound parameter per column (PostgreSQL ``unnest`` of
        arrays) or one JSON document (SQLite ``json_each``), so the statement is the same for
        every batch and SQLAlchemy compiles it once. (An ``IN`` over row values lets
        PostgreSQL fold the columns equal in every row into one range and scan it, and SQLite
        scans the table; a VALUES list is compiled anew for every batch.)
        """
        if self.dialect == "postgresql":
            columns = list(zip(*rows))
            wanted = sa.func.unnest(
                *[
                    sa.bindparam(f"wanted_{n}", list(values), type_=pg_dialect.ARRAY(table.c[n].type))
                    for n, values in zip(names, columns)
                ]
            ).table_valued(*[sa.column(n, table.c[n].type) for n in names], name="wanted").render_derived()
            return query.join(wanted, sa.and_(*[table.c[n] == wanted.c[n] for n in names]))
        payload = json.dumps([[v.isoformat() if isinstance(v, date) else v for v in row] for row in rows])
        wanted = sa.func.json_each(sa.bindparam("wanted_json", payload)).table_valued("value", name="wanted")
        return query.join(
            wanted,
            sa.and_(*[table.c[n] == sa.func.json_extract(wanted.c.value, f"$[{i}]") for i, n in enumerate(names)]),
        )

    def _write_states(
        self,
        conn: Connection,
        changed: dict[PartitionKey, PartitionState],
        *,
        existing: set[PartitionKey],
    ) -> None:
        """Update locked rows and insert new ones (a concurrent insert of a new key raises and retries).

        The projector fills the promoted facets' columns from each row's tags in this same
        transaction (see ``gridcat_pipelines.tag_facets.projector`` for the lock protocol).
        """
        projections = projector.load_projections(conn)
        table = projector.table_for(projections)
        updates = [projector.project(_state_to_row(s), projections) for k, s in changed.items() if k in existing]
        inserts = [projector.project(_state_to_row(s), projections) for k, s in changed.items() if k not in existing]
        if updates:
            stmt = dialect_insert(self.dialect, table)
            stmt = stmt.on_conflict_do_update(
                index_elements=list(KEY_COLUMNS),
                set_={c: stmt.excluded[c] for c in updates[0] if c not in KEY_COLUMNS},
            )
            for chunk in _chunks(updates):
                conn.execute(stmt, list(chunk))
        for chunk in _chunks(inserts):
            conn.execute(table.insert(), list(chunk))

    def _take_change_seqs(self, conn: Connection, count: int) -> list[int]:
        """Reserve ``count`` consecutive change seqs; the counter row stays locked until commit."""
        last = conn.execute(
            state_change_counter.update()
            .where(state_change_counter.c.id == 1)
            .values(last_seq=state_change_counter.c.last_seq + count)
            .returning(state_change_counter.c.last_seq)
        ).scalar_one()
        return list(range(last - count + 1, last + 1))

    def _insert_history(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        for chunk in _chunks(rows):
            conn.execute(partition_state_history.insert(), list(chunk))

    def _idempotent_response(
        self, conn: Connection, scope: str, keyed: dict[str, str]
    ) -> dict[str, dict[str, Any]]:
        """Stored responses for the keys seen before; a key reused with another request is an error."""
        t = idempotency_record
        rows: list[tuple[str, str, dict[str, Any]]] = []
        for chunk in _chunks(sorted(keyed)):
            query = sa.select(t.c.idempotency_key, t.c.request_hash, t.c.response).where(
                t.c.scope == scope, t.c.idempotency_key.in_(list(chunk))
            )
            rows.extend(tuple(row) for row in conn.execute(query))
        return _check_stored(rows, keyed)

    def _save_responses(
        self, conn: Connection, scope: str, responses: list[tuple[str, str, dict[str, Any]]]
    ) -> None:
        now = self._clock()
        rows = [
            {"scope": scope, "idempotency_key": k, "request_hash": h, "response": r, "created_at": now}
            for k, h, r in responses
        ]
        for chunk in _chunks(rows):
            conn.execute(idempotency_record.insert(), list(chunk))

    @staticmethod
    def _state_from_json(data: dict[str, Any]) -> PartitionState:
        key = PartitionKey.parse(data["customer_id"], data["query_name"], data["logical_date"], data["source"])
        updated = data.get("updated_at")
        return PartitionState(
            key=key,
            status=data["status"],
            current_run_id=data["current_run_id"],
            schema_version=data["schema_version"],
            record_count=data["record_count"],
            updated_at=None if updated is None else datetime.fromisoformat(updated.replace("Z", "+00:00")),
            error_message=data["error_message"],
            attempt_count=data["attempt_count"],
            version=data["version"],
            tags=dict(data.get("tags") or {}),
        )

    def _outcome_from_json(self, data: dict[str, Any]) -> RecordOutcome:
        return RecordOutcome(data["outcome"], self._state_from_json(data["state"]))

    @staticmethod
    def _history_from_row(row: Any) -> HistoryEntry:
        return HistoryEntry(
            id=row.id,
            key=_key_of(row),
            run_id=row.run_id,
            outcome=row.outcome,
            status=row.status,
            schema_version=row.schema_version,
            record_count=row.record_count,
            error_message=row.error_message,
            tags=row.tags,
            state_version=row.state_version,
            change_seq=row.change_seq,
            recorded_at=row.recorded_at,
            idempotency_key=row.idempotency_key,
        )

    def _page_size(self, page_size: int | None) -> int:
        if page_size is None or page_size == 0:
            return DEFAULT_PAGE_SIZE
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 0:
            raise invalid_argument(f"page_size {page_size!r} must be a non-negative integer (max {MAX_PAGE_SIZE})")
        return min(page_size, MAX_PAGE_SIZE)

    def _page_secret(self) -> bytes:
        if self._secret is None:
            with self.engine.connect() as conn:
                value = conn.execute(
                    sa.select(gridcat_meta.c.value).where(gridcat_meta.c.name == "page_token_secret")
                ).scalar_one()
            self._secret = bytes.fromhex(value)
        return self._secret

    def _filter_conditions(self, f: StateFilter, t: sa.Table = partition_state) -> list[Any]:
        conditions: list[Any] = []
        if f.status is not None:
            conditions.append(t.c.status == f.status)
        if f.source is not None:
            conditions.append(t.c.source == f.source)
        if f.customer_id is not None:
            conditions.append(t.c.customer_id == f.customer_id)
        if f.query_name is not None:
            conditions.append(t.c.query_name == f.query_name)
        if f.from_date is not None:
            conditions.append(t.c.logical_date >= f.from_date)
        if f.to_date is not None:
            conditions.append(t.c.logical_date <= f.to_date)
        return conditions

    def _after_key(self, after: list[Any], t: sa.Table = partition_state):
        try:
            key = PartitionKey.parse(after[1], after[2], after[3], after[0])
        except (GridcatError, IndexError, TypeError):
            raise invalid_argument("page_token has an unknown format") from None
        return sa.tuple_(*[t.c[c] for c in KEY_COLUMNS]) > sa.tuple_(*[sa.literal(v, t.c[c].type) for c, v in zip(KEY_COLUMNS, key.as_tuple())])
