"""The state database as the store of facet type descriptors and catalog entities.

Both repositories write in one transaction per call (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL:
the rows a call expects are locked ``FOR UPDATE``), so a rejected call changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gridcat_pipelines.errors import ALREADY_EXISTS, GridcatError, invalid_argument
from gridcat_pipelines.facet_types.model import (
    CatalogEntity,
    FacetTypeDescriptor,
    TargetType,
    parse_targets,
)
from gridcat_pipelines.facet_types.repository import FacetTypeRepository, check_expected
from gridcat_pipelines.facet_types.tables import catalog_entity, catalog_entity_facet, facet_type
from gridcat_pipelines.state.db import write_connection
from gridcat_pipelines.state.page_tokens import decode_token, encode_token
from gridcat_pipelines.state.tables import gridcat_meta

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def _descriptor_from_row(row: Any) -> FacetTypeDescriptor:
    return FacetTypeDescriptor(
        type_key=row.type_key,
        mandatory=bool(row.mandatory),
        enabled=bool(row.enabled),
        display_name=row.display_name,
        description=row.description,
        applicable_to=parse_targets(row.applicable_to),
        version=row.version,
        content_schema=row.content_schema,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
        updated_by=row.updated_by,
        revision=int(row.revision),
    )


def _descriptor_to_row(d: FacetTypeDescriptor) -> dict[str, Any]:
    data = d.to_json()
    return {
        "type_key": d.type_key,
        "mandatory": d.mandatory,
        "enabled": d.enabled,
        "display_name": d.display_name,
        "description": d.description,
        "applicable_to": data["applicableTo"],
        "version": d.version,
        "content_schema": d.content_schema,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
        "created_by": d.created_by,
        "updated_by": d.updated_by,
        "revision": d.revision,
    }


def _lock(conn: Connection, query: sa.Select) -> sa.Select:
    return query.with_for_update() if conn.dialect.name == "postgresql" else query


def _translate_integrity(exc: sa.exc.IntegrityError, what: str) -> GridcatError:
    return GridcatError(ALREADY_EXISTS, f"{what} was created concurrently; read it and retry")


class DbFacetTypeRepository(FacetTypeRepository):
    """Facet type descriptors in the ``facet_type`` table."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def get(self, type_key: str) -> FacetTypeDescriptor | None:
        """The stored descriptor, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(facet_type).where(facet_type.c.type_key == type_key)).first()
        return None if row is None else _descriptor_from_row(row)

    def get_all(self) -> list[FacetTypeDescriptor]:
        """Every stored descriptor by type key."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(facet_type).order_by(facet_type.c.type_key)).all()
        return [_descriptor_from_row(r) for r in rows]

    def write(self, puts=(), deletes=(), expected=None) -> None:
        """Upsert ``puts`` and delete ``deletes`` in one transaction, after the revision checks."""
        keys = sorted({d.type_key for d in puts} | set(deletes) | set(expected or {}))
        try:
            with write_connection(self.engine) as conn, conn.begin():
                query = _lock(
                    conn, sa.select(facet_type.c.type_key, facet_type.c.revision).where(facet_type.c.type_key.in_(keys))
                )
                current = {r.type_key: int(r.revision) for r in conn.execute(query)}
                check_expected(current, expected)
                if deletes:
                    conn.execute(sa.delete(facet_type).where(facet_type.c.type_key.in_(list(deletes))))
                for d in puts:
                    row = _descriptor_to_row(d)
                    if d.type_key in current and d.type_key not in deletes:
                        conn.execute(sa.update(facet_type).where(facet_type.c.type_key == d.type_key).values(**row))
                    else:
                        conn.execute(sa.insert(facet_type).values(**row))
        except sa.exc.IntegrityError as exc:
            raise _translate_integrity(exc, "a facet type") from None


def _entity_row(e: CatalogEntity) -> dict[str, Any]:
    return {
        "id": e.id,
        "type": e.type.value,
        "parent_id": e.parent_id,
        "name": e.name,
        "schema_name": e.schema_name,
        "table_name": e.table_name,
        "attribute_name": e.attribute_name,
        "origin": e.origin,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
        "created_by": e.created_by,
        "updated_by": e.updated_by,
        "revision": e.revision,
    }


def _entity_from_row(row: Any, facets: dict[str, dict[str, dict[str, Any]]]) -> CatalogEntity:
    return CatalogEntity(
        id=row.id,
        type=TargetType(row.type),
        name=row.name,
        parent_id=row.parent_id,
        schema_name=row.schema_name,
        table_name=row.table_name,
        attribute_name=row.attribute_name,
        facets=facets,
        origin=row.origin,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
        updated_by=row.updated_by,
        revision=int(row.revision),
    )


class DbEntityRepository:
    """Catalog entities in ``catalog_entity`` with their facets in ``catalog_entity_facet``."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._secret: bytes | None = None

    def _load(self, conn: Connection, rows: Sequence[Any]) -> list[CatalogEntity]:
        ids = [r.id for r in rows]
        facets: dict[str, dict[str, dict[str, dict[str, Any]]]] = {i: {} for i in ids}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            query = (
                sa.select(catalog_entity_facet)
                .where(catalog_entity_facet.c.entity_id.in_(chunk))
                .order_by(
                    catalog_entity_facet.c.entity_id, catalog_entity_facet.c.type_key, catalog_entity_facet.c.scope
                )
            )
            for f in conn.execute(query):
                facets[f.entity_id].setdefault(f.type_key, {})[f.scope] = dict(f.content)
        return [_entity_from_row(r, facets[r.id]) for r in rows]

    def get(self, entity_id: str) -> CatalogEntity | None:
        """The stored entity with its facets (markers as stored), or None."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(catalog_entity).where(catalog_entity.c.id == entity_id)).all()
            found = self._load(conn, rows)
        return found[0] if found else None

    def get_all(self) -> list[CatalogEntity]:
        """Every entity, ordered by id."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(catalog_entity).order_by(catalog_entity.c.id)).all()
            return self._load(conn, rows)

    def list_page(
        self,
        *,
        entity_type: TargetType | None = None,
        parent_id: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> tuple[list[CatalogEntity], str]:
        """One page of entities by id (filters: type, parent); the token resumes with the same filters."""
        size = _page_size(page_size)
        filters = {
            "kind": "catalog_entities",
            "type": entity_type.value if entity_type else None,
            "parent_id": parent_id,
        }
        conditions = []
        if entity_type is not None:
            conditions.append(catalog_entity.c.type == entity_type.value)
        if parent_id is not None:
            conditions.append(catalog_entity.c.parent_id == parent_id)
        if page_token:
            after = decode_token(self._page_secret(), page_token, filters)
            if len(after) != 1 or not isinstance(after[0], str):
                raise invalid_argument("page_token has an unknown format")
            conditions.append(catalog_entity.c.id > after[0])
        query = sa.select(catalog_entity).where(*conditions).order_by(catalog_entity.c.id).limit(size + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            entities = self._load(conn, rows[:size])
        token = encode_token(self._page_secret(), [entities[-1].id], filters) if len(rows) > size else ""
        return entities, token

    def revisions(self) -> dict[str, int]:
        """``{entity id: revision}`` of every stored entity."""
        with self.engine.connect() as conn:
            return {
                r.id: int(r.revision) for r in conn.execute(sa.select(catalog_entity.c.id, catalog_entity.c.revision))
            }

    def write(
        self,
        puts: Sequence[CatalogEntity] = (),
        deletes: Sequence[str] = (),
        expected: Mapping[str, int] | None = None,
    ) -> None:
        """Replace ``puts`` (row and facets) and delete ``deletes`` in one transaction."""
        keys = sorted({e.id for e in puts} | set(deletes) | set(expected or {}))
        try:
            with write_connection(self.engine) as conn, conn.begin():
                current: dict[str, int] = {}
                for start in range(0, len(keys), 500):
                    chunk = keys[start : start + 500]
                    query = _lock(
                        conn,
                        sa.select(catalog_entity.c.id, catalog_entity.c.revision).where(catalog_entity.c.id.in_(chunk)),
                    )
                    current.update({r.id: int(r.revision) for r in conn.execute(query)})
                _check_entity_expected(current, expected)
                gone = [k for k in deletes if k in current]
                touched = [e.id for e in puts if e.id in current] + gone
                for start in range(0, len(touched), 500):
                    chunk = touched[start : start + 500]
                    conn.execute(sa.delete(catalog_entity_facet).where(catalog_entity_facet.c.entity_id.in_(chunk)))
                for start in range(0, len(gone), 500):
                    conn.execute(sa.delete(catalog_entity).where(catalog_entity.c.id.in_(gone[start : start + 500])))
                inserts = [_entity_row(e) for e in puts if e.id not in current]
                if inserts:
                    conn.execute(sa.insert(catalog_entity), inserts)
                for e in puts:
                    if e.id in current:
                        conn.execute(
                            sa.update(catalog_entity).where(catalog_entity.c.id == e.id).values(**_entity_row(e))
                        )
                facet_rows = [
                    {"entity_id": e.id, "type_key": key, "scope": scope, "content": content}
                    for e in puts
                    for key, scopes in e.facets.items()
                    for scope, content in scopes.items()
                ]
                if facet_rows:
                    conn.execute(sa.insert(catalog_entity_facet), facet_rows)
        except sa.exc.IntegrityError as exc:
            raise _translate_integrity(exc, "an entity") from None

    def _page_secret(self) -> bytes:
        if self._secret is None:
            with self.engine.connect() as conn:
                value = conn.execute(
                    sa.select(gridcat_meta.c.value).where(gridcat_meta.c.name == "page_token_secret")
                ).scalar_one()
            self._secret = bytes.fromhex(value)
        return self._secret


def _check_entity_expected(current: Mapping[str, int], expected: Mapping[str, int] | None) -> None:
    from gridcat_pipelines.errors import failed_precondition

    for key, want in (expected or {}).items():
        have = current.get(key, 0)
        if have != want:
            if want == 0:
                raise GridcatError(ALREADY_EXISTS, f"entity {key!r} already exists", [{"id": key}])
            raise failed_precondition(
                f"entity {key!r} is at revision {have}, not the expected {want}",
                {"id": key, "current_revision": have, "expected_revision": want},
            )


def _page_size(page_size: int | None) -> int:
    if page_size is None or page_size == 0:
        return DEFAULT_PAGE_SIZE
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 0:
        raise invalid_argument(f"page_size {page_size!r} must be a non-negative integer (max {MAX_PAGE_SIZE})")
    return min(page_size, MAX_PAGE_SIZE)
