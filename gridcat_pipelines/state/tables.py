"""SQLAlchemy Core descriptions of the state-store tables created by ``sql/<dialect>/``.

The DDL lives in the versioned SQL files; these objects only let queries be written once
for both dialects. Keep them in step with the newest migration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC timestamps: TIMESTAMPTZ on PostgreSQL, ISO text on SQLite."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String())
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware ones")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.isoformat(timespec="microseconds")
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONMap = sa.JSON().with_variant(JSONB(), "postgresql")

metadata = sa.MetaData()


def key_columns() -> list[sa.Column]:
    """New Column objects for a partition key: source, customer_id, query_name, logical_date."""
    return [
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("query_name", sa.Text, nullable=False),
        sa.Column("logical_date", sa.Date, nullable=False),
    ]


partition_state = sa.Table(
    "partition_state",
    metadata,
    *key_columns(),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("current_run_id", sa.Text),
    sa.Column("schema_version", sa.Text),
    sa.Column("record_count", sa.BigInteger),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("error_message", sa.Text),
    sa.Column("attempt_count", sa.Integer, nullable=False),
    sa.Column("tags", JSONMap, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("source", "customer_id", "query_name", "logical_date"),
)

partition_state_history = sa.Table(
    "partition_state_history",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    *key_columns(),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("schema_version", sa.Text),
    sa.Column("record_count", sa.BigInteger),
    sa.Column("error_message", sa.Text),
    sa.Column("tags", JSONMap),
    sa.Column("result_hash", sa.Text, nullable=False),
    sa.Column("state_version", sa.BigInteger, nullable=False),
    sa.Column("change_seq", sa.BigInteger),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.Column("idempotency_key", sa.Text),
)

state_change_counter = sa.Table(
    "state_change_counter",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
)

idempotency_record = sa.Table(
    "idempotency_record",
    metadata,
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("idempotency_key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("response", JSONMap, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# The raw runs retention deleted (sql/<dialect>/0006_gate_fences.sql): a re-point never goes
# to a run at or below one of its partition's tombstones.
raw_run_tombstone = sa.Table(
    "raw_run_tombstone",
    metadata,
    *key_columns(),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("deleted_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("source", "customer_id", "query_name", "logical_date", "run_id"),
)

gridcat_meta = sa.Table(
    "gridcat_meta",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

KEY_COLUMNS = ("source", "customer_id", "query_name", "logical_date")

# The tag-facet registry (sql/<dialect>/0004_tag_facets.sql): every state write reads which
# facets project (``projector``) and every facet-filtered listing which facets serve a filter
# (``facet_filters``); ``gridcat_pipelines.tag_facets`` promotes, disables and backfills them.
FACET_STATUSES = ("PROMOTING", "BACKFILLING", "ENABLED", "DISABLED", "FAILED")
PROMOTING, BACKFILLING, ENABLED, DISABLED, FAILED = FACET_STATUSES

tag_facet = sa.Table(
    "tag_facet",
    metadata,
    sa.Column("facet_id", sa.Uuid(as_uuid=False), primary_key=True),
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


@lru_cache(maxsize=256)
def state_table_with(columns: tuple[str, ...]) -> sa.Table:
    """``partition_state`` described with the projection ``columns`` (validated names) added.

    Used for every statement that reads or writes facet columns, so one statement names one
    table object. Cached per column set; ``()`` is the plain table.
    """
    if not columns:
        return partition_state
    return sa.Table(
        "partition_state",
        sa.MetaData(),
        *[c._copy() for c in partition_state.columns],
        *[sa.Column(name, sa.Text) for name in columns],
    )
