"""Backfill jobs: keyset batches over ``partition_state``'s primary key, one short transaction
each, checkpointed in the job row.

Each batch transaction locks the job row, reads the checkpoint (the last key done), takes
the next range of primary keys after it (at most ``batch_size`` keys, sized so the batch
transaction takes about ``TARGET_BATCH_SECONDS``: a concurrent writer that needs one of its
rows waits at most about that long), updates the rows of that range the mode selects from
their tags, and writes the new checkpoint and counters, then commits: the work and its
checkpoint commit together. A run killed at any point (an exception, SIGKILL, a server crash
that loses the last asynchronously committed batches) leaves the job ``RUNNING`` with the
checkpoint of the last committed batch; running the job again resumes there, so the counts
come out exact. Two runners of the same job cannot double-count: each batch reads the
checkpoint under the job-row lock.

Modes: ``FULL`` visits every row and sets ``column = tags[key]`` (NULL where the tag is
absent) wherever it differs; ``MISSING_ONLY`` touches only rows whose column IS NULL while the
tag is present. Batches are key ranges of the primary key (index range scans that stop at
the range's end, see ``_key_range``); the mode's predicate applies inside the range.
``rows_processed`` counts rows visited (FULL) or rows selected by the predicate
(MISSING_ONLY), ``rows_updated`` rows changed;
``failures`` counts batches retried after a transient database error (deadlock, lock timeout,
serialization failure, lost connection). Rows written while the job runs are projected by the
writers themselves (see ``gridcat_pipelines.state.projector``), so a job that reaches the end
leaves a complete column.
"""

from __future__ import annotations

import json
import operator
import random
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gridcat_pipelines.state.db import write_connection
from gridcat_pipelines.state.tables import (
    BACKFILLING,
    DISABLED,
    ENABLED,
    FAILED,
    KEY_COLUMNS,
    state_table_with,
    tag_facet,
)
from gridcat_pipelines.tag_facets.tables import PENDING, RUNNING, SUCCEEDED, backfill_job
from gridcat_pipelines.tag_facets.views import job_json

MAX_CONSECUTIVE_FAILURES = 8
# Batch sizing (see ``BackfillRunner._adapt``): each batch transaction should take about
# TARGET_BATCH_SECONDS, the longest a concurrent writer may have to wait on one of its rows.
TARGET_BATCH_SECONDS = 0.05
FIRST_BATCH = 1_000  # rows of the first batch (at most the job's batch_size)
MIN_BATCH = 100
Progress = Callable[[dict[str, Any]], None]


class _Stop(Exception):
    """The job ended (finished, failed or taken over); carries the final row."""


def _locked(conn: Connection, query: sa.Select) -> sa.Select:
    return query.with_for_update() if conn.dialect.name == "postgresql" else query


def _key_values(key: list[Any]) -> tuple[Any, ...]:
    """A checkpoint key (JSON list, date as ISO text) as column values."""
    return (*key[:3], date.fromisoformat(key[3]))


def _compare(table: sa.Table, columns: tuple[str, ...], op: str, values: tuple[Any, ...]):
    """``(columns) op (values)``: a row comparison, or a plain one for a single column."""
    cols = [table.c[c] for c in columns]
    lits = [sa.literal(v, table.c[c].type) for c, v in zip(columns, values)]
    left, right = (cols[0], lits[0]) if len(cols) == 1 else (sa.tuple_(*cols), sa.tuple_(*lits))
    return left.operate(getattr(operator, op), right)


def _key_range(table: sa.Table, lo: tuple[Any, ...], hi: tuple[Any, ...], *, lo_inclusive: bool = False) -> list[Any]:
    """Conditions for ``lo < key <= hi`` (``lo <= key`` when inclusive) over the primary key,
    shaped so that the index range scan stops right after ``hi``.

    PostgreSQL (15) ends a btree scan on a row comparison only when the comparison's *first*
    column passes its bound: ``(source, customer_id, ...) <= (...)`` with a single ``source``
    never ends, and the scan reads the whole rest of the index past ``hi`` on every batch
    (measured: 100-200 ms per batch on 1M rows, however small the batch). So the leading
    columns ``lo`` and ``hi`` share become equalities and the row comparisons cover only the
    columns after them: the scan then stops at the first key whose first differing column
    passes ``hi``'s (an overshoot of at most the index entries sharing that column's value).
    """
    shared = 0
    while shared < len(KEY_COLUMNS) and lo[shared] == hi[shared]:
        shared += 1
    equal = [table.c[c] == sa.literal(v, table.c[c].type) for c, v in zip(KEY_COLUMNS[:shared], hi[:shared])]
    rest = KEY_COLUMNS[shared:]
    if not rest:  # lo == hi: one key
        return equal if lo_inclusive else [sa.false()]
    return [
        *equal,
        _compare(table, rest, "ge" if lo_inclusive else "gt", lo[shared:]),
        _compare(table, rest, "le", hi[shared:]),
    ]


def _mode_predicate(table: sa.Table, mode: str, key_name: str, column: str) -> list[Any]:
    tag = table.c.tags[key_name].as_string()
    if mode == "MISSING_ONLY":
        return [table.c[column].is_(None), tag.is_not(None)]
    return []


def count_rows(conn: Connection, mode: str, key_name: str, column: str) -> int:
    """Rows the mode selects right now (the job's ``rows_total`` at start)."""
    table = state_table_with((column,))
    query = sa.select(sa.func.count()).select_from(table).where(*_mode_predicate(table, mode, key_name, column))
    return int(conn.execute(query).scalar_one())


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, sa.exc.OperationalError):
        return True
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in ("40001", "40P01", "55P03")


class BackfillRunner:
    """Runs one job to its end (or until the process dies), reporting progress per batch."""

    def __init__(self, engine: Engine, job_id: str, clock: Callable[[], datetime], progress: Progress | None = None):
        self.engine = engine
        self.job_id = job_id
        self.clock = clock
        self.progress = progress
        self.limit: int | None = None  # the adaptive batch size, at most the job's batch_size
        self._conn: Connection | None = None

    def run(self) -> dict[str, Any]:
        """Start (or resume) the job and run batches until it succeeds or fails; the final job JSON."""
        try:
            self._transaction(self._start)
            failures = 0
            while True:
                try:
                    started = time.perf_counter()
                    row = self._transaction(self._batch)
                    self._adapt(row.batch_size, time.perf_counter() - started)
                    failures = 0
                except _Stop:
                    raise
                except Exception as exc:  # noqa: BLE001 - only transient DB errors are retried
                    if not _is_transient(exc):
                        raise
                    failures += 1
                    self._release()  # a fresh connection for the retry (this one may be lost)
                    self._transaction(lambda c, exc=exc: self._count_failure(c, exc, failures))
                    time.sleep(random.uniform(0.01, 0.05) * failures)
                    continue
                if self.progress is not None:
                    self.progress(job_json(row))
        except _Stop as stop:
            final = stop.args[0]
            if self.progress is not None:
                self.progress(job_json(final))
            return job_json(final)
        finally:
            self._release()

    def _adapt(self, batch_size: int, seconds: float) -> None:
        """Size the next batch so its transaction takes about ``TARGET_BATCH_SECONDS``.

        A concurrent writer that needs a row of the batch waits until the batch commits, so
        the whole transaction is timed (reading the range, the UPDATE, the checkpoint, the
        commit), not only the UPDATE. The size follows the last batch's rate, at most halved
        or doubled per batch (one slow batch, say behind a checkpoint, does not collapse it),
        between ``MIN_BATCH`` and the job's ``batch_size``; the first batch has
        ``FIRST_BATCH`` rows, so even it cannot hold rows long.
        """
        limit = self.limit or min(FIRST_BATCH, batch_size)
        factor = min(max(TARGET_BATCH_SECONDS / max(seconds, 1e-6), 0.5), 2.0)
        self.limit = max(min(int(limit * factor), batch_size), min(MIN_BATCH, batch_size))

    # ---------------------------------------------------------------- steps

    def _release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a lost connection may fail to close; it is gone anyway
                pass

    def _transaction(self, work: Callable[[Connection], Any]) -> Any:
        """Run ``work`` in a write transaction; a ``_Stop`` commits what it wrote, then propagates.

        The runner keeps one connection for all its batches (no pool checkout and ping per batch).
        """
        if self._conn is None:
            self._conn = write_connection(self.engine)
        conn = self._conn
        txn = conn.begin()
        try:
            result = work(conn)
        except _Stop:
            txn.commit()
            raise
        except BaseException:
            txn.rollback()
            raise
        txn.commit()
        return result

    def _job(self, conn: Connection) -> Any:
        row = conn.execute(_locked(conn, sa.select(backfill_job).where(backfill_job.c.job_id == self.job_id))).first()
        if row is None:
            raise LookupError(self.job_id)
        return row

    def _facet(self, conn: Connection, facet_id: str) -> Any:
        return conn.execute(sa.select(tag_facet).where(tag_facet.c.facet_id == facet_id)).one()

    def _set_job(self, conn: Connection, **values: Any) -> Any:
        return conn.execute(
            backfill_job.update()
            .where(backfill_job.c.job_id == self.job_id)
            .values(updated_at=self.clock(), **values)
            .returning(*backfill_job.c)
        ).one()

    def _fail(self, conn: Connection, message: str) -> None:
        row = self._set_job(conn, status=FAILED, error=message, finished_at=self.clock())
        raise _Stop(row)

    def _start(self, conn: Connection) -> None:
        job = self._job(conn)
        if job.status == SUCCEEDED:
            raise _Stop(job)
        facet = self._facet(conn, job.facet_id)
        if facet.status == DISABLED or not facet.projecting:
            self._fail(conn, f"facet {facet.key_name!r} is {facet.status} and not projecting: nothing to backfill")
        now = self.clock()
        values: dict[str, Any] = {"status": RUNNING, "error": None, "finished_at": None}
        if job.status == PENDING:
            values.update(
                started_at=now,
                rows_total=count_rows(conn, job.mode, facet.key_name, facet.column_name),
            )
            facet_values: dict[str, Any] = {"last_refresh_started_at": now, "updated_at": now}
            if facet.status == FAILED:
                facet_values.update(status=BACKFILLING, error=None)
            conn.execute(tag_facet.update().where(tag_facet.c.facet_id == facet.facet_id).values(**facet_values))
        self._set_job(conn, **values)

    def _batch(self, conn: Connection) -> Any:
        job = self._job(conn)
        if job.status != RUNNING:
            raise _Stop(job)
        facet = self._facet(conn, job.facet_id)
        if facet.status == DISABLED or not facet.projecting:
            self._fail(conn, f"facet {facet.key_name!r} was disabled while the backfill ran")
        column, key_name = facet.column_name, facet.key_name
        table = state_table_with((column,))
        predicate = _mode_predicate(table, job.mode, key_name, column)
        lo = None if job.checkpoint is None else _key_values(json.loads(job.checkpoint))
        count, hi = self._next_range(conn, table, lo, min(self.limit or job.batch_size, job.batch_size))
        if not count:
            self._finish(conn, job, facet)
        if conn.dialect.name == "postgresql":
            # The batch and its checkpoint commit together, so losing the last batches in a
            # server crash only makes the job redo them from the older checkpoint: no need to
            # wait for the WAL flush (it would also hold the batch's row locks that long).
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        last = [hi[0], hi[1], hi[2], hi[3].isoformat()]
        tag = table.c.tags[key_name].as_string()
        # The first batch starts at the first key (inclusive): a range open below would end
        # up scanning past hi (see ``_key_range``). A row written before that key meanwhile was
        # written by a writer that projects it.
        if lo is None:
            key_range = _key_range(table, self._first_key(conn, table), hi, lo_inclusive=True)
        else:
            key_range = _key_range(table, lo, hi)
        update = (
            table.update().where(*key_range, *predicate, table.c[column].is_distinct_from(tag)).values({column: tag})
        )
        changed = max(conn.execute(update).rowcount, 0)
        # FULL visits every row of the range; MISSING_ONLY only the rows its predicate selects,
        # all of which it changes (column NULL, tag present), so they are exactly ``changed``.
        visited = count if job.mode == "FULL" else changed
        return self._set_job(
            conn,
            checkpoint=json.dumps(last),
            rows_processed=job.rows_processed + visited,
            rows_updated=job.rows_updated + changed,
            batches=job.batches + 1,
        )

    @staticmethod
    def _next_range(
        conn: Connection, table: sa.Table, lo: tuple[Any, ...] | None, limit: int
    ) -> tuple[int, tuple[Any, ...] | None]:
        """How many keys the next batch holds (at most ``limit`` after ``lo``) and its last key.

        The range is picked by primary key alone (an index range scan whatever the mode): with
        the mode's predicate here the planner may scan and sort every remaining row per batch.
        Only the count and the last key come back, not every key of the batch.
        """
        cols = [table.c[c] for c in KEY_COLUMNS]
        after = [] if lo is None else [_compare(table, KEY_COLUMNS, "gt", lo)]
        keys = (
            sa.select(*cols, sa.func.row_number().over(order_by=cols).label("n"))
            .where(*after)
            .order_by(*cols)
            .limit(limit)
            .subquery()
        )
        row = conn.execute(sa.select(keys).order_by(keys.c.n.desc()).limit(1)).first()
        if row is None:
            return 0, None
        return int(row.n), tuple(row[:4])

    @staticmethod
    def _first_key(conn: Connection, table: sa.Table) -> tuple[Any, ...]:
        cols = [table.c[c] for c in KEY_COLUMNS]
        return tuple(conn.execute(sa.select(*cols).order_by(*cols).limit(1)).one())

    def _finish(self, conn: Connection, job: Any, facet: Any) -> None:
        now = self.clock()
        total = max(job.rows_total or 0, job.rows_processed)
        row = self._set_job(conn, status=SUCCEEDED, finished_at=now, rows_total=total, error=None)
        values: dict[str, Any] = {"last_refresh_succeeded_at": now, "updated_at": now}
        if facet.status in (BACKFILLING, FAILED):
            values.update(status=ENABLED, error=None)
        conn.execute(tag_facet.update().where(tag_facet.c.facet_id == facet.facet_id).values(**values))
        raise _Stop(row)

    def _count_failure(self, conn: Connection, exc: BaseException, consecutive: int) -> None:
        job = self._job(conn)
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        if consecutive >= MAX_CONSECUTIVE_FAILURES:
            row = self._set_job(conn, failures=job.failures + 1, status=FAILED, error=message, finished_at=self.clock())
            facet = self._facet(conn, job.facet_id)
            if facet.status == BACKFILLING:
                conn.execute(
                    tag_facet.update()
                    .where(tag_facet.c.facet_id == facet.facet_id)
                    .values(status=FAILED, error=f"backfill {self.job_id} failed: {message}", updated_at=self.clock())
                )
            raise _Stop(row)
        self._set_job(conn, failures=job.failures + 1, error=message)
