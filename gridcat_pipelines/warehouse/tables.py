"""SQLAlchemy Core description of the warehouse load log (DDL in ``sql/<dialect>/0006_gate_fences.sql``)."""

from __future__ import annotations

import sqlalchemy as sa

from gridcat_pipelines.state.tables import UTCDateTime, key_columns, metadata

warehouse_load = sa.Table(
    "warehouse_load",
    metadata,
    *key_columns(),
    sa.Column("loaded_run_id", sa.Text),
    sa.Column("loaded_version", sa.BigInteger),
    sa.Column("loaded_rows", sa.BigInteger),
    sa.Column("loaded_at", UTCDateTime),
    sa.Column("last_outcome", sa.Text, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("requests", sa.Integer, nullable=False),
    sa.Column("due_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("source", "customer_id", "query_name", "logical_date"),
)
