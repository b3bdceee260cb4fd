"""The partition state store (the state-store contract), with the catalog RPC conventions for writes: ``StateStore``.

One write path for validators and operator tooling, :meth:`StateStore.record_results`; what it
decides for each offered result is ``decisions``. The store wires its rooms together:

* ``reads`` and ``listing``: the reads outside write transactions (``listing`` serves
  tag-facet filters through ``facet_filters``);
* ``writes``: the work of the write transactions, which ``transactions`` runs and retries;
  it reads and writes through ``sql_write`` (portable) or ``pg_write`` (PostgreSQL, pipelined),
  decides with ``decisions`` and keeps idempotent responses with ``idempotency``. Every state
  write fills the promoted facet columns (``projector``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.run_ids import parse_run_id
from gridcat_pipelines.state import listing, migrations, reads, sql_write, writes
from gridcat_pipelines.state.db import create_state_engine, write_connection
from gridcat_pipelines.state.keys import PartitionKey
from gridcat_pipelines.state.models import (
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
from gridcat_pipelines.state.transactions import in_write_transaction


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class HeldStates:
    """States held still by :meth:`StateStore.hold`, and the transaction that holds them."""

    conn: Connection
    states: dict[PartitionKey, PartitionState]


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
        self._page_secret = listing.PageSecret(engine)
        # Single-statement reads need no transaction: on PostgreSQL they run in autocommit,
        # which saves the BEGIN and the ROLLBACK round trips of an implicit transaction.
        self._reader = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if engine.dialect.name == "postgresql" else engine
        )
        if check_schema:
            migrations.check_schema(engine)

    @classmethod
    def open(cls, url: str, *, upgrade: bool = False, **kwargs: Any) -> StateStore:
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
        return reads.get(self._reader, key)

    def get_many(self, keys: Iterable[PartitionKey]) -> dict[PartitionKey, PartitionState]:
        """States for several keys at once; keys without a row are implicit ``pending``."""
        return reads.get_many(self.engine, keys)

    def history(self, key: PartitionKey, limit: int | None = None) -> list[HistoryEntry]:
        """Every result offered for ``key`` and every re-point, oldest first."""
        return reads.history(self.engine, key, limit)

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
        ``filters`` are the tag-facet contract's ``[{key, op: "EQ", value: {stringValue}}]`` on promoted tag
        keys (see ``gridcat_pipelines.state.facet_filters``): an ENABLED facet is served from its
        column, a facet still being promoted or backfilled from the JSON tags; any other op, an
        unknown or a DISABLED key is ``INVALID_ARGUMENT`` (detail ``"key not promoted"``).
        """
        return listing.list_states(
            self.engine, self._page_secret, state_filter, page_size=page_size, page_token=page_token, filters=filters
        )

    def changes_since(self, cursor: int, limit: int = 1000) -> list[StateChange]:
        """Committed state changes with ``seq > cursor``, in feed order, at most ``limit``."""
        return reads.changes_since(self.engine, cursor, limit)

    def last_change_seq(self) -> int:
        """The highest committed change seq (0 before the first change)."""
        return reads.last_change_seq(self.engine)

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
        return in_write_transaction(self.engine, lambda conn: self._record_batch(conn, items, commit=True))

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
        request_hash = digest({**key.to_json(), "run_id": run_id, "expected_version": expected_version})
        return in_write_transaction(
            self.engine,
            lambda conn: writes.repoint(
                conn, key, run_id, expected_version, self._clock, idempotency_key=idem, request_hash=request_hash
            ),
        )

    @contextmanager
    def hold(self, keys: Sequence[PartitionKey]) -> Iterator[HeldStates]:
        """Hold the states of ``keys`` still for the block: yields them, read under a write lock
        (PostgreSQL: the state rows ``FOR UPDATE``, in key order; SQLite: the database write
        lock), so no state write to these keys commits until the block ends.

        The block may write its own bookkeeping on ``held.conn``; it commits when the block
        ends normally and rolls back when it raises. Keep the block short: every writer of these
        partitions waits for it (on SQLite, every writer).
        """
        wanted = sorted(set(keys))
        with write_connection(self.engine) as conn, conn.begin():
            found = sql_write.lock_states(conn, wanted) if wanted else {}
            yield HeldStates(conn, {k: found.get(k) or PartitionState.implicit_pending(k) for k in wanted})

    # --------------------------------------------------------------- internals

    def _record_batch(
        self, conn: Connection, items: list[ValidationResult], *, commit: bool = False
    ) -> list[RecordOutcome]:
        """Decide and write validated ``items`` in the caller's write transaction, which commits
        (see ``writes.record_batch``)."""
        return writes.record_batch(conn, items, self._clock, commit=commit)
