"""Catalog entities: save with validation and ``_type`` markers, read with marker checks.

On write every facet instance gets ``_type`` = its map key when it has none; a marker that
disagrees is rejected with the rest of the validation issues (``INVALID_ARGUMENT``, every
issue in ``details``, nothing stored). On read a missing or disagreeing marker is
``FAILED_PRECONDITION`` (the stored data is not what the catalog wrote).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from gridcat_pipelines.errors import failed_precondition, invalid_argument, not_found
from gridcat_pipelines.facet_types.catalog import FacetTypeCatalog
from gridcat_pipelines.facet_types.db_repository import DbEntityRepository
from gridcat_pipelines.facet_types.model import (
    TYPE_MARKER,
    CatalogEntity,
    TargetType,
    ValidationIssue,
    check_entity_id,
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def with_markers(entity: CatalogEntity) -> CatalogEntity:
    """``entity`` with ``_type`` injected into every facet instance that lacks it (first key)."""
    facets = {
        key: {
            scope: ({TYPE_MARKER: key, **content} if TYPE_MARKER not in content else dict(content))
            for scope, content in scopes.items()
        }
        for key, scopes in entity.facets.items()
    }
    return replace(entity, facets=facets)


def marker_issues(entity: CatalogEntity) -> list[ValidationIssue]:
    """Facet instances whose ``_type`` is missing or disagrees with their map key."""
    issues = []
    for key, scopes in entity.facets.items():
        for scope, content in scopes.items():
            marker = content.get(TYPE_MARKER)
            if marker != key:
                what = "has no _type marker" if marker is None else f"carries _type {marker!r}"
                issues.append(
                    ValidationIssue(
                        "TYPE_MARKER_MISMATCH",
                        f"facet {key!r} (scope {scope!r}) of {entity.id!r} {what}",
                        type_key=key,
                        entity_id=entity.id,
                        scope=scope,
                        path=f"$.facets[{key!r}][{scope!r}]._type",
                    )
                )
    return issues


def check_markers(entity: CatalogEntity) -> CatalogEntity:
    """``entity`` when every stored marker equals its key; ``FAILED_PRECONDITION`` otherwise."""
    issues = marker_issues(entity)
    if issues:
        raise failed_precondition(issues[0].message, *[i.to_json() for i in issues])
    return entity


@dataclass(frozen=True)
class WriteReport:
    """What a bulk write did: entity ids created, updated, unchanged and deleted."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()

    def to_json(self) -> dict[str, int]:
        """Counts: ``{"created", "updated", "unchanged", "deleted"}``."""
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "deleted": len(self.deleted),
        }


class CatalogEntities:
    """Reads and writes catalog entities, validating every facet against the catalog."""

    def __init__(
        self,
        catalog: FacetTypeCatalog,
        repository: DbEntityRepository,
        *,
        clock: Callable[[], datetime] = _utcnow,
        actor: str = "gridcat",
    ):
        self.catalog = catalog
        self.repository = repository
        self._clock = clock
        self.actor = actor

    def get(self, entity_id: str) -> CatalogEntity:
        """The entity ``entity_id`` (``NOT_FOUND``), its markers checked."""
        check_entity_id(entity_id)
        entity = self.repository.get(entity_id)
        if entity is None:
            raise not_found(f"no entity {entity_id!r}", {"id": entity_id})
        return check_markers(entity)

    def all(self) -> list[CatalogEntity]:
        """Every entity by id, markers checked."""
        return [check_markers(e) for e in self.repository.get_all()]

    def list(
        self,
        *,
        entity_type: str | None = None,
        parent_id: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> tuple[list[CatalogEntity], str]:
        """One page of entities (``next_page_token`` empty on the last page)."""
        target = TargetType.parse(entity_type, allow_any=False) if entity_type else None
        entities, token = self.repository.list_page(
            entity_type=target, parent_id=parent_id, page_size=page_size, page_token=page_token
        )
        return [check_markers(e) for e in entities], token

    def problems(
        self, entity: CatalogEntity, *, mandatory: bool = False, catalog: FacetTypeCatalog | None = None
    ) -> list[ValidationIssue]:
        """Every validation issue of ``entity`` (and missing mandatory facets when asked)."""
        catalog = catalog or self.catalog
        issues = marker_issues(entity)
        seen = {(i.type_key, i.scope) for i in issues}
        issues += [
            i
            for i in catalog.validate_entity(entity).issues
            if not (i.code == "TYPE_MARKER_MISMATCH" and (i.type_key, i.scope) in seen)
        ]
        if mandatory:
            issues += catalog.missing_mandatory(entity)
        return issues

    def save(self, entity: CatalogEntity, *, expected_revision: int | None = None) -> CatalogEntity:
        """Create or replace one entity after validation (``INVALID_ARGUMENT`` lists every issue)."""
        report = self.write_all(
            [entity], expected={entity.id: expected_revision} if expected_revision is not None else None
        )
        del report
        return self.get(entity.id)

    def delete(self, entity_id: str) -> None:
        """Remove one entity and its facets (``NOT_FOUND`` when absent)."""
        self.get(entity_id)
        self.repository.write(deletes=[entity_id])

    def write_all(
        self,
        entities: Sequence[CatalogEntity],
        *,
        delete_ids: Sequence[str] = (),
        expected: dict[str, int] | None = None,
    ) -> WriteReport:
        """Validate all, then write all in one transaction; unchanged entities keep their revision."""
        ids = [e.id for e in entities]
        if len(set(ids)) != len(ids):
            raise invalid_argument("an entity id appears more than once in one write")
        marked = [with_markers(e) for e in entities]
        snapshot = self.catalog.snapshot()
        issues = [i for e in marked for i in self.problems(e, catalog=snapshot)]
        if issues:
            raise invalid_argument(
                f"{len(issues)} facet validation issue(s); first: {issues[0].entity_id}: {issues[0].path}: {issues[0].message}",
                *[i.to_json() for i in issues],
            )
        current = {e.id: e for e in self._existing(ids)}
        for key, want in (expected or {}).items():
            have = current[key].revision if key in current else 0
            if have != want:
                raise failed_precondition(
                    f"entity {key!r} is at revision {have}, not the expected {want}",
                    {"id": key, "current_revision": have, "expected_revision": want},
                )
        now, puts, created, updated, unchanged = self._clock(), [], [], [], []
        for e in marked:
            old = current.get(e.id)
            if old is not None and old.definition() == e.definition():
                unchanged.append(e.id)
                continue
            puts.append(
                replace(
                    e,
                    created_at=old.created_at if old else now,
                    created_by=old.created_by if old else self.actor,
                    updated_at=now,
                    updated_by=self.actor,
                    revision=(old.revision if old else 0) + 1,
                )
            )
            (updated if old else created).append(e.id)
        if expected is None:
            expected = {}
        expected = {**{e.id: (current[e.id].revision if e.id in current else 0) for e in puts}, **expected}
        if puts or delete_ids:
            self.repository.write(puts=puts, deletes=list(delete_ids), expected=expected)
        return WriteReport(tuple(created), tuple(updated), tuple(unchanged), tuple(delete_ids))

    def _existing(self, ids: Sequence[str]) -> list[CatalogEntity]:
        wanted = set(ids)
        if len(wanted) > 50:
            return [e for e in self.repository.get_all() if e.id in wanted]
        return [e for i in wanted if (e := self.repository.get(i)) is not None]

    def validate(self, entity_id: str | None = None) -> tuple[int, list[ValidationIssue]]:
        """Check one entity or all: ``(entities checked, issues)`` incl. missing mandatory facets."""
        entities = [self.repository.get(entity_id)] if entity_id else self.repository.get_all()
        if entity_id and entities[0] is None:
            raise not_found(f"no entity {entity_id!r}", {"id": entity_id})
        snapshot = self.catalog.snapshot()
        issues = [i for e in entities for i in self.problems(e, mandatory=True, catalog=snapshot)]  # type: ignore[arg-type]
        return len(entities), issues
