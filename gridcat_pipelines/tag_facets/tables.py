"""SQLAlchemy Core description of the backfill job table (DDL in
``sql/<dialect>/0004_tag_facets.sql``) and the facet service's constants.

The registry table ``tag_facet``, its statuses and ``partition_state`` with projection columns
(``state_table_with``) are described in ``gridcat_pipelines.state.tables``: every state write and
every facet-filtered listing reads them there.
"""

from __future__ import annotations

import sqlalchemy as sa

from gridcat_pipelines.state.tables import UTCDateTime

JOB_STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED")
PENDING, RUNNING, SUCCEEDED = "PENDING", "RUNNING", "SUCCEEDED"
MODES = ("FULL", "MISSING_ONLY")
FACET_BUDGET = 12

metadata = sa.MetaData()
_UUID = sa.Uuid(as_uuid=False)

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
