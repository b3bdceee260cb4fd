"""SQLAlchemy Core descriptions of the facet tables (DDL in ``sql/<dialect>/0004_tag_facets.sql``)
and of ``partition_state`` with its projection columns."""

from __future__ import annotations

from functools import lru_cache

import sqlalchemy as sa

from gridcat_pipelines.state.tables import UTCDateTime, partition_state

FACET_STATUSES = ("PROMOTING", "BACKFILLING", "ENABLED", "DISABLED", "FAILED")
PROMOTING, BACKFILLING, ENABLED, DISABLED, FAILED = FACET_STATUSES
JOB_STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED")
PENDING, RUNNING, SUCCEEDED = "PENDING", "RUNNING", "SUCCEEDED"
MODES = ("FULL", "MISSING_ONLY")
FACET_BUDGET = 12

metadata = sa.MetaData()
_UUID = sa.Uuid(as_uuid=False)

tag_facet = sa.Table(
    "tag_facet",
    metadata,
    sa.Column("facet_id", _UUID, primary_key=True),
    sa.Column("key_name", sa.Text, nullable=False),
    sa.Column("column_name", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("projecting", sa.Boolean, nullable=False),
    sa.Column("create_index", sa.Boolean, nullable=False),
    sa.Column("index_name", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("promotion_started_at", UTCDateTime, nullable=False),
    sa.Column("last_refresh_started_at", UTCDateTime),
    sa.Column("last_refresh_succeeded_at", UTCDateTime),
    sa.Column("disabled_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

backfill_job = sa.Table(
    "tag_facet_backfill_job",
    metadata,
    sa.Column("job_id", _UUID, primary_key=True),
    sa.Column("facet_id", _UUID, nullable=False),
    sa.Column("mode", sa.Text, nullable=False),
    sa.Column("batch_size", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("rows_total", sa.BigInteger),
    sa.Column("rows_processed", sa.BigInteger, nullable=False),
    sa.Column("rows_updated", sa.BigInteger, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("batches", sa.Integer, nullable=False),
    sa.Column("checkpoint", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
)


@lru_cache(maxsize=256)
def state_table_with(columns: tuple[str, ...]) -> sa.Table:
    """``partition_state`` described with the projection ``columns`` (validated names) added.

    Used for every statement that reads or writes facet columns, so one statement names one
    table object. Cached per column set; ``()`` is the plain table.
    """
    if not columns:
        return partition_state
    table = sa.Table(
        "partition_state",
        sa.MetaData(),
        *[c._copy() for c in partition_state.columns],
        *[sa.Column(name, sa.Text) for name in columns],
    )
    return table
