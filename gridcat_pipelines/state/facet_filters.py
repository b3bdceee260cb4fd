"""ListStates facet filters (the tag-facet contract): ``[{key, op: "EQ", value: {stringValue}}]``.

Read from the facet registry that ``gridcat_pipelines.tag_facets`` manages; served by the
store's listing (``listing``).

Only ``EQ`` on a promoted key (a facet that is not ``DISABLED``) is accepted; anything else is
``INVALID_ARGUMENT`` with the detail ``"key not promoted"``. How a filter is served depends on
the facet's status at query time:

* ``ENABLED`` (the column is complete): from the projection column (indexed); the key is listed
  in the response's ``applied_facets``;
* ``PROMOTING``, ``BACKFILLING`` or ``FAILED`` (the column may still lack rows): from the JSON
  tags, which are always complete; the key is listed in ``non_facet_filters``.

Either way the rows are the same, so a page token stays valid while a facet becomes enabled.
Keys and values are bound parameters; column names come from the registry (validated at
promotion) and are quoted by SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.state.keys import MAX_TAG_VALUE_LEN
from gridcat_pipelines.state.tables import DISABLED, ENABLED, state_table_with, tag_facet

NOT_PROMOTED = "key not promoted"
MAX_FILTERS = 32


@dataclass(frozen=True)
class FacetFilter:
    """One equality filter on a tag key."""

    key: str
    value: str
    op: str = "EQ"

    def fingerprint(self) -> list[str]:
        """The filter as plain JSON, to bind page tokens to it."""
        return [self.key, self.op, self.value]

    def to_json(self) -> dict[str, Any]:
        """The filter in the seed's request shape."""
        return {"key": self.key, "op": self.op, "value": {"stringValue": self.value}}


def _not_promoted(message: str, key: object, op: object) -> Exception:
    return invalid_argument(message, NOT_PROMOTED, {"key": key, "op": op})


def parse_filters(filters: Sequence[Any] | None) -> list[FacetFilter]:
    """Check the request's filters (shape, ``EQ`` only, string values); registry checks come later."""
    if filters is None:
        return []
    if isinstance(filters, (str, bytes, dict)) or not isinstance(filters, Sequence):
        raise invalid_argument("filters must be a list of {key, op, value: {stringValue}}")
    if len(filters) > MAX_FILTERS:
        raise invalid_argument(f"at most {MAX_FILTERS} filters, got {len(filters)}")
    parsed: list[FacetFilter] = []
    for item in filters:
        if isinstance(item, FacetFilter):
            item = item.to_json()
        if not isinstance(item, dict):
            raise invalid_argument("each filter must be {key, op, value: {stringValue}}")
        key, op, value = item.get("key"), item.get("op", "EQ"), item.get("value")
        if not isinstance(key, str) or not key:
            raise invalid_argument("filter key must be a non-empty string", {"key": key})
        if op != "EQ":
            raise _not_promoted(f"filter op {op!r} on {key!r} is not supported: only EQ on a promoted key", key, op)
        text = value.get("stringValue") if isinstance(value, dict) else None
        if not isinstance(text, str) or len(text) > MAX_TAG_VALUE_LEN:
            raise invalid_argument(
                f"filter on {key!r} needs value.stringValue, a string of at most {MAX_TAG_VALUE_LEN} characters",
                {"key": key},
            )
        parsed.append(FacetFilter(key=key, value=text, op="EQ"))
    return parsed


@dataclass
class ResolvedFilters:
    """Filters turned into SQL conditions over :attr:`table`."""

    table: sa.Table
    conditions: list[Any] = field(default_factory=list)
    applied_facets: list[str] = field(default_factory=list)
    non_facet_filters: list[str] = field(default_factory=list)


def resolve(conn: Connection, filters: list[FacetFilter]) -> ResolvedFilters:
    """Look the keys up in the registry and build the conditions (see the module docstring)."""
    if not filters:
        return ResolvedFilters(table=state_table_with(()))
    keys = sorted({f.key for f in filters})
    rows = conn.execute(
        sa.select(tag_facet.c.key_name, tag_facet.c.column_name, tag_facet.c.status).where(
            tag_facet.c.key_name.in_(keys)
        )
    ).all()
    facets = {r.key_name: r for r in rows}
    for f in filters:
        facet = facets.get(f.key)
        if facet is None or facet.status == DISABLED:
            why = "is disabled" if facet is not None else "is not a promoted facet"
            raise _not_promoted(f"filter key {f.key!r} {why}: key not promoted", f.key, f.op)
    columns = tuple(sorted({facets[f.key].column_name for f in filters if facets[f.key].status == ENABLED}))
    table = state_table_with(columns)
    resolved = ResolvedFilters(table=table)
    for f in filters:
        facet = facets[f.key]
        if facet.status == ENABLED:
            resolved.conditions.append(table.c[facet.column_name] == f.value)
            bucket = resolved.applied_facets
        else:
            resolved.conditions.append(table.c.tags[f.key].as_string() == f.value)
            bucket = resolved.non_facet_filters
        if f.key not in bucket:
            bucket.append(f.key)
    return resolved
