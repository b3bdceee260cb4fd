"""SQLAlchemy Core descriptions of the catalog tables created by ``sql/<dialect>/0003_facet_types.sql``."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import TypeDecorator

from gridcat_pipelines.state.tables import JSONMap, UTCDateTime


class TargetList(TypeDecorator):
    """A list of target type names: ``TEXT[]`` on PostgreSQL, comma-separated text on SQLite."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(sa.Text))
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return list(value) if dialect.name == "postgresql" else ",".join(value)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):
            return [v for v in value.split(",") if v]
        return list(value)


metadata = sa.MetaData()

facet_type = sa.Table(
    "facet_type",
    metadata,
    sa.Column("type_key", sa.Text, primary_key=True),
    sa.Column("mandatory", sa.Boolean, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("display_name", sa.Text),
    sa.Column("description", sa.Text),
    sa.Column("applicable_to", TargetList),
    sa.Column("version", sa.Text),
    sa.Column("content_schema", JSONMap),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.Text),
    sa.Column("updated_by", sa.Text),
    sa.Column("revision", sa.BigInteger, nullable=False),
)

catalog_entity = sa.Table(
    "catalog_entity",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("parent_id", sa.Text),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("schema_name", sa.Text),
    sa.Column("table_name", sa.Text),
    sa.Column("attribute_name", sa.Text),
    sa.Column("origin", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.Text),
    sa.Column("updated_by", sa.Text),
    sa.Column("revision", sa.BigInteger, nullable=False),
)

catalog_entity_facet = sa.Table(
    "catalog_entity_facet",
    metadata,
    sa.Column("entity_id", sa.Text, primary_key=True),
    sa.Column("type_key", sa.Text, primary_key=True),
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("content", JSONMap, nullable=False),
)
