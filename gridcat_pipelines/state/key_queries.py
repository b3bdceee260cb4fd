"""Statements addressed by partition key: one key's equality, a set of keys as one join
(``restrict``), and the batching of long key lists (``chunks``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect

from gridcat_pipelines.state.keys import PartitionKey
from gridcat_pipelines.state.tables import KEY_COLUMNS

CHUNK = 500  # keys per lookup / rows per statement

T = TypeVar("T")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def key_equals(table: sa.Table, key: PartitionKey) -> list[Any]:
    """Conditions selecting ``key``'s rows of ``table`` (one per key column)."""
    return [table.c[c] == v for c, v in zip(KEY_COLUMNS, key.as_tuple())]


def key_row(key: PartitionKey) -> dict[str, Any]:
    """``key`` as the values of the key columns."""
    return dict(zip(KEY_COLUMNS, key.as_tuple()))


def restrict(
    dialect: str, query: sa.Select, table: sa.Table, names: Sequence[str], rows: list[tuple[Any, ...]]
) -> sa.Select:
    """``query`` limited to rows whose ``names`` columns equal one of ``rows``: each row is
    one primary-key (or index) lookup, whatever the table's size.

    The wanted rows travel as one bound parameter per column (PostgreSQL ``unnest`` of
    arrays) or one JSON document (SQLite ``json_each``), so the statement is the same for
    every batch and SQLAlchemy compiles it once. (An ``IN`` over row values lets
    PostgreSQL fold the columns equal in every row into one range and scan it, and SQLite
    scans the table; a VALUES list is compiled anew for every batch.)
    """
    if dialect == "postgresql":
        columns = list(zip(*rows))
        wanted = (
            sa.func.unnest(
                *[
                    sa.bindparam(f"wanted_{n}", list(values), type_=pg_dialect.ARRAY(table.c[n].type))
                    for n, values in zip(names, columns)
                ]
            )
            .table_valued(*[sa.column(n, table.c[n].type) for n in names], name="wanted")
            .render_derived()
        )
        return query.join(wanted, sa.and_(*[table.c[n] == wanted.c[n] for n in names]))
    payload = json.dumps([[v.isoformat() if isinstance(v, date) else v for v in row] for row in rows])
    wanted = sa.func.json_each(sa.bindparam("wanted_json", payload)).table_valued("value", name="wanted")
    return query.join(
        wanted,
        sa.and_(*[table.c[n] == sa.func.json_extract(wanted.c.value, f"$[{i}]") for i, n in enumerate(names)]),
    )
