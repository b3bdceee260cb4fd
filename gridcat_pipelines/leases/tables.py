"""SQLAlchemy Core descriptions of the lease tables (DDL in ``sql/<dialect>/0002_run_leases.sql``)."""

from __future__ import annotations

import sqlalchemy as sa

from gridcat_pipelines.state.tables import UTCDateTime, metadata

run_lease = sa.Table(
    "run_lease",
    metadata,
    sa.Column("lease_id", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("holder", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime),
)

run_lease_pin = sa.Table(
    "run_lease_pin",
    metadata,
    sa.Column("lease_id", sa.Text, primary_key=True),
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("query_name", sa.Text, primary_key=True),
    sa.Column("logical_date", sa.Date, primary_key=True),
    sa.Column("run_id", sa.Text, nullable=False),
)
