"""``FacetService``: the tag-facet contract's StateFacetService over the partition-state table.

Statuses of a facet::

    PROMOTING ──DDL ok──▶ BACKFILLING ──backfill job succeeded──▶ ENABLED
        │                     │   (or straight to ENABLED when no row needs projecting)
        └─DDL failed─▶ FAILED ◀┘ backfill gave up (a later backfill that succeeds → ENABLED)
    any status ──DisableFacet──▶ DISABLED ──PromoteFacet (same key)──▶ PROMOTING …

Filters are served from the column only when ENABLED (see ``gridcat_pipelines.state.facet_filters``).
Every request is validated before anything is written: a rejected call changes neither the
registry nor the schema. Promotion registers the key under a registry lock (budget and
uniqueness are checked there), runs the DDL outside that transaction (``ddl``), then switches
the projector on under a SHARE lock (``gridcat_pipelines.state.projector``) and queues the
initial backfill job when rows need one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gridcat_pipelines.errors import (
    ALREADY_EXISTS,
    RESOURCE_EXHAUSTED,
    GridcatError,
    failed_precondition,
    invalid_argument,
    not_found,
)
from gridcat_pipelines.state.db import write_connection
from gridcat_pipelines.state.store import StateStore
from gridcat_pipelines.state.tables import (
    BACKFILLING,
    DISABLED,
    ENABLED,
    FAILED,
    PROMOTING,
    state_table_with,
    tag_facet,
)
from gridcat_pipelines.tag_facets import ddl
from gridcat_pipelines.tag_facets.backfill import BackfillRunner, Progress
from gridcat_pipelines.tag_facets.identifiers import (
    default_column_for,
    index_name_for,
    parse_column_name,
    parse_key_name,
    parse_uuid,
)
from gridcat_pipelines.tag_facets.tables import FACET_BUDGET, MODES, PENDING, RUNNING, backfill_job
from gridcat_pipelines.tag_facets.views import facet_json, job_json
from gridcat_pipelines.timestamps import iso_utc

DEFAULT_BATCH_SIZE = 10_000
MAX_BATCH_SIZE = 100_000
MAX_REASON_LEN = 1024
_REGISTRY_LOCK_ID = 0x66616365  # "face"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def parse_mode(value: object) -> str:
    """``FULL`` or ``MISSING_ONLY`` (``INVALID_ARGUMENT`` otherwise)."""
    if value not in MODES:
        raise invalid_argument(f"mode {value!r} must be one of {', '.join(MODES)}", {"field": "mode"})
    return str(value)


def parse_batch_size(value: object) -> int:
    """A batch size from 1 to 100000 (``None`` or 0 means the default, 10000)."""
    if value is None or value == 0:
        return DEFAULT_BATCH_SIZE
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BATCH_SIZE:
        raise invalid_argument(
            f"batch_size {value!r} must be an integer from 1 to {MAX_BATCH_SIZE}", {"field": "batch_size"}
        )
    return value


class FacetService:
    """Promote, disable, list, backfill and audit tag facets of one state store."""

    def __init__(self, store: StateStore, *, clock: Callable[[], datetime] = _utcnow):
        self.store = store
        self.engine = store.engine
        self.clock = clock

    # ------------------------------------------------------------- promote

    def promote(self, key_name: object, column_name: object = None, create_index: object = True) -> dict[str, Any]:
        """PromoteFacet: register ``key_name``, add its column (and index), start projecting.

        ``column_name`` defaults to the key lowercased with other characters as ``_``. Errors:
        ``INVALID_ARGUMENT`` (bad key or column name, reserved word, column collision),
        ``ALREADY_EXISTS`` (key promoted and not DISABLED), ``RESOURCE_EXHAUSTED`` (12 facets
        that are not DISABLED). A disabled key is promoted again on its old column.
        """
        key = parse_key_name(key_name)
        explicit = column_name not in (None, "")
        column = parse_column_name(column_name if explicit else default_column_for(key))
        if not isinstance(create_index, bool):
            raise invalid_argument("create_index must be true or false", {"field": "create_index"})
        facet_id, column, reused = self._register(key, column, explicit, create_index)
        try:
            added = ddl.add_column(self.engine, column)
            if create_index:
                ddl.ensure_index(self.engine, column, index_name_for(column))
        except Exception as exc:
            self._mark_failed(facet_id, f"DDL failed: {type(exc).__name__}: {exc}".splitlines()[0])
            raise
        self._activate(facet_id)
        job_id = self._initial_backfill(facet_id, key, column, fresh=added or not reused)
        facet = self.get_facet(facet_id)
        return {**facet, "job_id": job_id}

    def _register(self, key: str, column: str, explicit: bool, create_index: bool) -> tuple[str, str, bool]:
        def work(conn: Connection) -> tuple[str, str, bool]:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _REGISTRY_LOCK_ID})
            rows = conn.execute(sa.select(tag_facet)).all()
            existing = next((r for r in rows if r.key_name == key), None)
            if existing is not None and existing.status != DISABLED:
                raise GridcatError(
                    ALREADY_EXISTS,
                    f"key {key!r} is already promoted (facet {existing.facet_id}, status {existing.status})",
                    {"facet_id": str(existing.facet_id), "status": existing.status},
                )
            active = sum(1 for r in rows if r.status != DISABLED)
            if active >= FACET_BUDGET:
                raise GridcatError(
                    RESOURCE_EXHAUSTED,
                    f"the facet budget is {FACET_BUDGET} facets that are not DISABLED; disable one first",
                    {"budget": FACET_BUDGET, "active": active},
                )
            now = self.clock()
            values = {
                "status": PROMOTING,
                "projecting": False,
                "create_index": create_index,
                "error": None,
                "reason": None,
                "disabled_at": None,
                "promotion_started_at": now,
                "updated_at": now,
            }
            if existing is not None:
                if explicit and column != existing.column_name:
                    raise invalid_argument(
                        f"key {key!r} was promoted before as column {existing.column_name!r}; "
                        "promoting it again reuses that column",
                        {"field": "column_name", "column_name": existing.column_name},
                    )
                conn.execute(
                    tag_facet.update()
                    .where(tag_facet.c.facet_id == existing.facet_id)
                    .values(
                        index_name=index_name_for(existing.column_name) if create_index else existing.index_name,
                        **values,
                    )
                )
                return str(existing.facet_id), existing.column_name, True
            taken = ddl.state_columns(conn) | {r.column_name for r in rows}
            if column in taken:
                raise invalid_argument(
                    f"column_name {column!r} collides with an existing column of partition_state; choose another",
                    {"field": "column_name"},
                )
            facet_id = str(uuid.uuid4())
            conn.execute(
                tag_facet.insert().values(
                    facet_id=facet_id,
                    key_name=key,
                    column_name=column,
                    created_at=now,
                    index_name=index_name_for(column) if create_index else None,
                    **values,
                )
            )
            return facet_id, column, False

        try:
            return self._write(work)
        except sa.exc.IntegrityError:  # a concurrent promotion of the same key or column won
            raise GridcatError(ALREADY_EXISTS, f"key {key!r} or column {column!r} was promoted concurrently") from None

    def _activate(self, facet_id: str) -> None:
        """Switch the projector on for the facet under SHARE on partition_state (see
        ``gridcat_pipelines.state.projector``)."""

        def work(conn: Connection) -> None:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("LOCK TABLE partition_state IN SHARE MODE")
            conn.execute(
                tag_facet.update()
                .where(tag_facet.c.facet_id == facet_id, tag_facet.c.status == PROMOTING)
                .values(projecting=True, status=BACKFILLING, updated_at=self.clock())
            )

        ddl.with_lock_retry(self.engine, work, what="switching the projector on")

    def _initial_backfill(self, facet_id: str, key: str, column: str, *, fresh: bool) -> str | None:
        """Queue the backfill the new column needs (MISSING_ONLY for a new column, FULL for a
        reused one); mark the facet ENABLED at once when no row needs projecting."""
        table = state_table_with((column,))
        tag = table.c.tags[key].as_string()
        with self.engine.connect() as conn:
            stale = conn.execute(
                sa.select(sa.literal(1)).select_from(table).where(table.c[column].is_distinct_from(tag)).limit(1)
            ).first()
        if stale is None:

            def work(conn: Connection) -> None:
                now = self.clock()
                conn.execute(
                    tag_facet.update()
                    .where(tag_facet.c.facet_id == facet_id, tag_facet.c.status == BACKFILLING)
                    .values(status=ENABLED, last_refresh_started_at=now, last_refresh_succeeded_at=now, updated_at=now)
                )

            self._write(work)
            return None
        return self.trigger_backfill(facet_id, mode="MISSING_ONLY" if fresh else "FULL")["job_id"]

    def _mark_failed(self, facet_id: str, error: str) -> None:
        self._write(
            lambda conn: conn.execute(
                tag_facet.update()
                .where(tag_facet.c.facet_id == facet_id)
                .values(status=FAILED, error=error, updated_at=self.clock())
            )
        )

    # ------------------------------------------------------------- disable

    def disable(self, facet_id: object, reason: object) -> dict[str, Any]:
        """DisableFacet: stop projecting and refuse filters on it; the column is kept.

        Answers the facet (with ``disabled_at``) and ``outstanding_backfill_jobs`` (PENDING or
        RUNNING jobs of the facet; each ends FAILED when it next runs). Errors:
        ``INVALID_ARGUMENT`` (bad id, empty reason), ``NOT_FOUND``, ``FAILED_PRECONDITION``
        (already disabled).
        """
        fid = parse_uuid(facet_id, "facet_id")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_LEN:
            raise invalid_argument(
                f"reason must be non-empty text of at most {MAX_REASON_LEN} characters", {"field": "reason"}
            )

        def work(conn: Connection) -> list[dict[str, Any]]:
            facet = self._facet_row(conn, fid)
            if facet.status == DISABLED:
                raise failed_precondition(
                    f"facet {fid} is already disabled", {"disabled_at": iso_utc(facet.disabled_at)}
                )
            now = self.clock()
            conn.execute(
                tag_facet.update()
                .where(tag_facet.c.facet_id == fid)
                .values(status=DISABLED, projecting=False, disabled_at=now, reason=reason, updated_at=now)
            )
            jobs = conn.execute(
                sa.select(backfill_job.c.job_id, backfill_job.c.status)
                .where(backfill_job.c.facet_id == fid, backfill_job.c.status.in_((PENDING, RUNNING)))
                .order_by(backfill_job.c.created_at)
            ).all()
            return [{"job_id": str(j.job_id), "status": j.status} for j in jobs]

        outstanding = self._write(work)
        return {**self.get_facet(fid), "outstanding_backfill_jobs": outstanding}

    # ---------------------------------------------------------------- reads

    def list_facets(self) -> dict[str, Any]:
        """ListFacets: every facet (DISABLED included), by key name."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(tag_facet).order_by(tag_facet.c.key_name)).all()
        return {"facets": [facet_json(r) for r in rows]}

    def get_facet(self, facet_id: object) -> dict[str, Any]:
        """One facet by id (``NOT_FOUND`` when unknown)."""
        fid = parse_uuid(facet_id, "facet_id")
        with self.engine.connect() as conn:
            return facet_json(self._facet_row(conn, fid))

    def compliance(self) -> dict[str, Any]:
        """ListFacetCompliance: per facet, rows total, rows carrying the tag, projection NULL
        where the tag is present (not yet backfilled), tag absent, and drift (projection set
        and different from the tag, including set where the tag is absent)."""
        facets = self.list_facets()["facets"]
        out = []
        with self.engine.connect() as conn:
            columns = ddl.state_columns(conn)
            for f in facets:
                key, column = f["key_name"], f["column_name"]
                has_column = column in columns
                table = state_table_with((column,) if has_column else ())
                tag = table.c.tags[key].as_string()
                if has_column:
                    col = table.c[column]
                    null_with_tag = sa.case((sa.and_(tag.is_not(None), col.is_(None)), 1), else_=0)
                    drift = sa.case((sa.and_(col.is_not(None), col.is_distinct_from(tag)), 1), else_=0)
                else:
                    null_with_tag = sa.case((tag.is_not(None), 1), else_=0)
                    drift = sa.literal(0)
                row = conn.execute(
                    sa.select(
                        sa.func.count(),
                        sa.func.coalesce(sa.func.sum(sa.case((tag.is_not(None), 1), else_=0)), 0),
                        sa.func.coalesce(sa.func.sum(null_with_tag), 0),
                        sa.func.coalesce(sa.func.sum(drift), 0),
                    ).select_from(table)
                ).one()
                total, with_tag, nulls, drifted = (int(v) for v in row)
                out.append(
                    {
                        "facet_id": f["facet_id"],
                        "key_name": key,
                        "column_name": column,
                        "status": f["status"],
                        "rows_total": total,
                        "rows_with_tag": with_tag,
                        "null_with_tag": nulls,
                        "tag_absent": total - with_tag,
                        "drift": drifted,
                    }
                )
        return {"facets": out}

    # ------------------------------------------------------------- backfill

    def trigger_backfill(self, facet_id: object, batch_size: object = None, mode: object = "FULL") -> dict[str, Any]:
        """TriggerFacetBackfill: queue a job; always ``{"job_id", "status": "PENDING"}``.

        Errors: ``INVALID_ARGUMENT`` (bad id, mode or batch size), ``NOT_FOUND``,
        ``FAILED_PRECONDITION`` (facet DISABLED, or its column is not in place yet).
        """
        fid = parse_uuid(facet_id, "facet_id")
        mode_ = parse_mode(mode)
        size = parse_batch_size(batch_size)

        def work(conn: Connection) -> str:
            facet = self._facet_row(conn, fid)
            if facet.status == DISABLED:
                raise failed_precondition(f"facet {fid} is DISABLED; promote its key again first")
            if not facet.projecting:
                raise failed_precondition(
                    f"facet {fid} is {facet.status} and its column is not in place; disable it and promote again",
                    {"status": facet.status, "error": facet.error},
                )
            job_id = str(uuid.uuid4())
            now = self.clock()
            conn.execute(
                backfill_job.insert().values(
                    job_id=job_id,
                    facet_id=fid,
                    mode=mode_,
                    batch_size=size,
                    status=PENDING,
                    rows_total=None,
                    rows_processed=0,
                    rows_updated=0,
                    failures=0,
                    batches=0,
                    checkpoint=None,
                    error=None,
                    created_at=now,
                    updated_at=now,
                )
            )
            return job_id

        return {"job_id": self._write(work), "status": PENDING}

    def backfill_status(self, job_id: object) -> dict[str, Any]:
        """FacetBackfillStatus: the job with ``status`` at the top level, counts and ETA."""
        jid = parse_uuid(job_id, "job_id")
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(backfill_job).where(backfill_job.c.job_id == jid)).first()
        if row is None:
            raise not_found(f"no backfill job {jid}")
        return job_json(row)

    def jobs_to_launch(self, stale_after_seconds: float = 600.0) -> list[dict[str, Any]]:
        """PENDING jobs, and RUNNING ones whose last batch is older than ``stale_after_seconds``
        (their runner died); oldest first. What the Dagster sensor launches."""
        cutoff = self.clock().timestamp() - stale_after_seconds
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(backfill_job)
                .where(backfill_job.c.status.in_((PENDING, RUNNING)))
                .order_by(backfill_job.c.created_at)
            ).all()
        return [job_json(r) for r in rows if r.status == PENDING or r.updated_at.timestamp() < cutoff]

    def run_backfill(self, job_id: object, progress: Progress | None = None) -> dict[str, Any]:
        """Run (or resume from its checkpoint) one job to its end in this process; the final job.

        ``progress`` is called with the job JSON after every batch (for a progress bar).
        """
        jid = parse_uuid(job_id, "job_id")
        self.backfill_status(jid)  # NOT_FOUND before anything runs
        return BackfillRunner(self.engine, jid, self.clock, progress).run()

    # -------------------------------------------------------------- listing

    def list_states(self, state_filter=None, *, filters=None, page_size=None, page_token=None):
        """ListStates with facet filters: the store's one listing path (see
        ``gridcat_pipelines.state.facet_filters``)."""
        return self.store.list_states(state_filter, filters=filters, page_size=page_size, page_token=page_token)

    # ------------------------------------------------------------ internals

    def _write(self, work: Callable[[Connection], Any]) -> Any:
        with write_connection(self.engine) as conn, conn.begin():
            return work(conn)

    @staticmethod
    def _facet_row(conn: Connection, fid: str) -> Any:
        row = conn.execute(sa.select(tag_facet).where(tag_facet.c.facet_id == fid)).first()
        if row is None:
            raise not_found(f"no facet {fid}")
        return row
