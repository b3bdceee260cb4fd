"""ListStates: pages of state rows in key order, filtered by base columns and tag-facet
filters, resumed by signed page tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gridcat_pipelines.errors import GridcatError, invalid_argument
from gridcat_pipelines.state import facet_filters
from gridcat_pipelines.state.codecs import state_from_row
from gridcat_pipelines.state.keys import PartitionKey
from gridcat_pipelines.state.models import StateFilter, StatePage
from gridcat_pipelines.state.page_tokens import decode_token, encode_token
from gridcat_pipelines.state.tables import KEY_COLUMNS, gridcat_meta, partition_state

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000


class PageSecret:
    """The database's page-token secret (``gridcat_meta``), read on first use and kept."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._secret: bytes | None = None

    def __call__(self) -> bytes:
        """The secret's bytes."""
        if self._secret is None:
            with self._engine.connect() as conn:
                value = conn.execute(
                    sa.select(gridcat_meta.c.value).where(gridcat_meta.c.name == "page_token_secret")
                ).scalar_one()
            self._secret = bytes.fromhex(value)
        return self._secret


def list_states(
    engine: Engine,
    secret: PageSecret,
    state_filter: StateFilter | None = None,
    *,
    page_size: int | None = None,
    page_token: str | None = None,
    filters: Sequence[Any] | None = None,
) -> StatePage:
    """One page of state rows; see ``StateStore.list_states``."""
    state_filter = state_filter or StateFilter()
    size = page_size_of(page_size)
    requested = facet_filters.parse_filters(filters)
    fingerprint = {"kind": "states", **state_filter.fingerprint()}
    if requested:
        fingerprint["facet_filters"] = [f.fingerprint() for f in requested]
    after = decode_token(secret(), page_token, fingerprint) if page_token else None
    with engine.connect() as conn:
        resolved = facet_filters.resolve(conn, requested)
        table = resolved.table
        conditions = filter_conditions(state_filter, table) + resolved.conditions
        if after is not None:
            conditions.append(after_key(after, table))
        query = (
            sa.select(*[table.c[c.name] for c in partition_state.columns])
            .where(*conditions)
            .order_by(*[table.c[c] for c in KEY_COLUMNS])
            .limit(size + 1)
        )
        rows = conn.execute(query).all()
    states = [state_from_row(r) for r in rows[:size]]
    token = ""
    if len(rows) > size:
        last = states[-1].key
        token = encode_token(
            secret(),
            [last.source, last.customer_id, last.query_name, last.logical_date.isoformat()],
            fingerprint,
        )
    if not requested:
        return StatePage(states=states, next_page_token=token)
    return StatePage(
        states=states,
        next_page_token=token,
        applied_facets=resolved.applied_facets,
        non_facet_filters=resolved.non_facet_filters,
    )


def page_size_of(page_size: int | None) -> int:
    """The rows a page holds: 20 when unset or 0, at most 1000; ``INVALID_ARGUMENT`` when negative
    or not an integer."""
    if page_size is None or page_size == 0:
        return DEFAULT_PAGE_SIZE
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 0:
        raise invalid_argument(f"page_size {page_size!r} must be a non-negative integer (max {MAX_PAGE_SIZE})")
    return min(page_size, MAX_PAGE_SIZE)


def filter_conditions(f: StateFilter, t: sa.Table = partition_state) -> list[Any]:
    """The base-column filter ``f`` as conditions over ``t``."""
    conditions: list[Any] = []
    if f.status is not None:
        conditions.append(t.c.status == f.status)
    if f.source is not None:
        conditions.append(t.c.source == f.source)
    if f.customer_id is not None:
        conditions.append(t.c.customer_id == f.customer_id)
    if f.query_name is not None:
        conditions.append(t.c.query_name == f.query_name)
    if f.from_date is not None:
        conditions.append(t.c.logical_date >= f.from_date)
    if f.to_date is not None:
        conditions.append(t.c.logical_date <= f.to_date)
    return conditions


def after_key(after: list[Any], t: sa.Table = partition_state) -> Any:
    """Rows of ``t`` whose key sorts after the page token's last key; ``INVALID_ARGUMENT``
    when the token's key does not parse."""
    try:
        key = PartitionKey.parse(after[1], after[2], after[3], after[0])
    except (GridcatError, IndexError, TypeError):
        raise invalid_argument("page_token has an unknown format") from None
    return sa.tuple_(*[t.c[c] for c in KEY_COLUMNS]) > sa.tuple_(
        *[sa.literal(v, t.c[c].type) for c, v in zip(KEY_COLUMNS, key.as_tuple())]
    )
