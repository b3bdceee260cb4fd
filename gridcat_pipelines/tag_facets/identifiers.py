"""Identifiers that reach facet DDL: validated here, then quoted by the dialect.

A projection column name must match ``^[a-z][a-z0-9_]{0,30}$``, must not be an SQL reserved
word (the list below: SQL:2016 reserved words plus PostgreSQL's and SQLite's keywords) and
must not collide with an existing column of ``partition_state``. Tag keys (and filter
values) never reach SQL text: they travel as bound parameters.
"""

from __future__ import annotations

import re
import uuid

from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.state.keys import _TAG_KEY_RE

COLUMN_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
INDEX_PREFIX = "partition_state_facet_"

RESERVED_WORDS = frozenset(
    """
    abort action add after all alter always analyze and any array as asc asensitive assertion
    asymmetric at atomic attach authorization autoincrement avg before begin between bigint
    binary blob boolean both by call called cascade cascaded case cast catalog char character
    check clob close collate collation column commit concurrently condition conflict connect
    connection constraint constraints continue convert corresponding count create cross cube
    current current_catalog current_date current_role current_schema current_time
    current_timestamp current_user cursor cycle database date day deallocate dec decimal
    declare default deferrable deferred delete desc describe detach deterministic distinct do
    domain double drop each else end escape except exclude exclusive exec execute exists
    explain external extract false fetch filter first float following for foreign free freeze
    from full function generated get glob global grant group groups having hold hour identity
    if ignore ilike immediate in index indexed indicator initially inner inout input insensitive
    insert instead int integer intersect interval into is isnull isolation join key language
    large last lateral leading left level like limit local localtime localtimestamp lower match
    materialized max merge method min minute modifies module month names national natural nchar
    nclob new next no none not nothing notnull null nullif nulls numeric of offset old on only
    open option or order others out outer output over overlaps overlay parameter partial
    partition placing plan position pragma preceding precision prepare primary prior
    privileges procedure query raise range read reads real recursive ref references
    referencing regexp reindex release rename replace restrict result return returning returns
    revoke right role rollback rollup row rowid rows savepoint schema scroll search second
    section select sensitive session session_user set similar size smallint some space
    specific sql sqlstate start static substring sum symmetric system system_user table
    tablesample temp temporary then ties time timestamp timezone_hour timezone_minute to
    trailing transaction translate treat trigger trim true truncate uescape unbounded union
    unique unknown unnest update upper usage user using vacuum value values varchar variadic
    varying verbose view virtual when whenever where window with within without work write
    year zone oid ctid xmin xmax cmin cmax tableoid oid _rowid_ main
    """.split()
)


def parse_key_name(value: object) -> str:
    """A tag key that may be promoted: the tag-key syntax of the state store."""
    if not isinstance(value, str) or not _TAG_KEY_RE.match(value):
        raise invalid_argument(
            f"key_name {value!r} is not a tag key: must match {_TAG_KEY_RE.pattern}",
            {"field": "key_name"},
        )
    return value


def default_column_for(key_name: str) -> str:
    """The column name a key gets when none is given: lowercased, other characters as ``_``."""
    return re.sub(r"[^a-z0-9_]", "_", key_name.lower())[:31]


def parse_column_name(value: object) -> str:
    """A syntactically valid, non-reserved projection column name (collisions checked by the caller)."""
    if not isinstance(value, str) or not COLUMN_RE.match(value):
        raise invalid_argument(f"column_name {value!r} must match ^[a-z][a-z0-9_]{{0,30}}$", {"field": "column_name"})
    if value in RESERVED_WORDS or value.startswith("sqlite_") or value.startswith("pg_"):
        raise invalid_argument(
            f"column_name {value!r} is an SQL reserved word or system name; choose another",
            {"field": "column_name"},
        )
    return value


def index_name_for(column: str) -> str:
    """The name of a facet column's index (at most 53 characters, valid on both dialects)."""
    return f"{INDEX_PREFIX}{parse_column_name(column)}_idx"


def parse_uuid(value: object, field: str) -> str:
    """A UUID in canonical lowercase hyphenated form."""
    if not isinstance(value, str):
        raise invalid_argument(f"{field} {value!r} is not a UUID", {"field": field})
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise invalid_argument(f"{field} {value!r} is not a UUID", {"field": field}) from None


def quote(engine_or_conn, name: str) -> str:
    """``name`` (already validated) quoted by the connection's dialect."""
    return engine_or_conn.dialect.identifier_preparer.quote_identifier(name)
