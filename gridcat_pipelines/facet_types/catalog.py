"""The facet type catalog (the facet-type catalog spec's ``FacetCatalog``): merged sources, guarded writes, validation.

The effective catalog merges three sources on every read:

1. the platform's mandatory types (``structural``, ``descriptive``, ``relation``): always
   present, always enabled, always mandatory; only ``displayName`` and ``description`` come
   from the repository, every other field is the platform's;
2. the platform's optional types (``concept``, ``value-mapping``): the repository's row when
   there is one, else the platform default (enabled);
3. custom types from the repository (never mandatory).

The deployment config then overrides ``enabled`` of non-mandatory types (``disabled`` wins
over ``enabled``; mandatory types ignore both). Because mandatory types are forced on read
and every write path checks them first, no sequence of writes can disable, delete or
un-mandate them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gridcat_pipelines.errors import (
    ALREADY_EXISTS,
    GridcatError,
    failed_precondition,
    invalid_argument,
    not_found,
)
from gridcat_pipelines.facet_types.content_validation import (
    check_content_schema,
    validate_against_schema,
)
from gridcat_pipelines.facet_types.model import (
    TYPE_MARKER,
    CatalogEntity,
    FacetTypeDescriptor,
    TargetType,
    ValidationIssue,
    ValidationResult,
    check_type_key,
)
from gridcat_pipelines.facet_types.platform import MANDATORY_TYPE_KEYS, PLATFORM_TYPES
from gridcat_pipelines.facet_types.repository import FacetTypeRepository

OUTCOME_CREATED = "created"
OUTCOME_UPDATED = "updated"
OUTCOME_UNCHANGED = "unchanged"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DeploymentConfig:
    """Per-deployment switches: type keys to enable and to disable (mandatory types ignore both)."""

    enabled: frozenset[str] = frozenset()
    disabled: frozenset[str] = frozenset()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> DeploymentConfig:
        """From ``{"enabled": [...], "disabled": [...]}``; a key in both is ``INVALID_ARGUMENT``."""
        data = data or {}
        unknown = set(data) - {"enabled", "disabled"}
        if unknown:
            raise invalid_argument(f"facet type config: unknown key(s) {', '.join(sorted(unknown))}")
        enabled = frozenset(check_type_key(k) for k in data.get("enabled") or [])
        disabled = frozenset(check_type_key(k) for k in data.get("disabled") or [])
        both = enabled & disabled
        if both:
            raise invalid_argument(f"facet type config: {', '.join(sorted(both))} both enabled and disabled")
        return cls(enabled=enabled, disabled=disabled)


class FacetTypeCatalog:
    """Registers, guards and answers questions about facet types; validates facet content."""

    def __init__(
        self,
        repository: FacetTypeRepository,
        config: DeploymentConfig | None = None,
        *,
        clock: Callable[[], datetime] = _utcnow,
        actor: str = "gridcat",
    ):
        self.repository = repository
        self.config = config or DeploymentConfig()
        self._clock = clock
        self.actor = actor

    # ------------------------------------------------------------ startup

    def ensure_platform_types(self) -> list[str]:
        """Store the platform types the repository lacks (so the database lists them); returns their keys."""
        if self.repository.read_only:
            return []
        stored = {d.type_key for d in self.repository.get_all()}
        missing = [k for k in PLATFORM_TYPES if k not in stored]
        if not missing:
            return []
        now = self._clock()
        puts = [PLATFORM_TYPES[k].with_changes(created_at=now, updated_at=now, revision=1) for k in missing]
        try:
            self.repository.write(puts=puts, expected={k: 0 for k in missing})
        except GridcatError as exc:  # another process seeded them first
            if exc.code != ALREADY_EXISTS:
                raise
        return missing

    def snapshot(self) -> FacetTypeCatalog:
        """A read-only view of the catalog as it is now (one read), for validating many entities."""
        from gridcat_pipelines.facet_types.repository import InMemoryFacetTypeRepository

        repo = InMemoryFacetTypeRepository(self.repository.get_all())
        repo.read_only = True
        return FacetTypeCatalog(repo, self.config, clock=self._clock, actor=self.actor)

    # ------------------------------------------------------------ queries

    def _effective(self, stored: FacetTypeDescriptor | None, key: str) -> FacetTypeDescriptor | None:
        platform = PLATFORM_TYPES.get(key)
        if platform is not None and platform.mandatory:
            d = platform
            if stored is not None:
                d = platform.with_changes(
                    display_name=stored.display_name or platform.display_name,
                    description=stored.description or platform.description,
                    created_at=stored.created_at,
                    updated_at=stored.updated_at,
                    created_by=stored.created_by,
                    updated_by=stored.updated_by,
                    revision=stored.revision,
                )
            return d.with_changes(mandatory=True, enabled=True)
        d = stored or platform
        if d is None:
            return None
        enabled = d.enabled
        if key in self.config.disabled:
            enabled = False
        elif key in self.config.enabled:
            enabled = True
        return d.with_changes(mandatory=False, enabled=enabled)

    def get(self, type_key: str) -> FacetTypeDescriptor | None:
        """The effective descriptor of ``type_key`` (None when the catalog does not know it)."""
        return self._effective(self.repository.get(type_key), type_key)

    def require(self, type_key: str) -> FacetTypeDescriptor:
        """The effective descriptor, or ``NOT_FOUND``."""
        check_type_key(type_key)
        d = self.get(type_key)
        if d is None:
            raise not_found(f"no facet type {type_key!r}", {"typeKey": type_key})
        return d

    def all(self) -> list[FacetTypeDescriptor]:
        """Every effective descriptor, ordered by type key."""
        stored = {d.type_key: d for d in self.repository.get_all()}
        keys = sorted(set(stored) | set(PLATFORM_TYPES))
        return [d for k in keys if (d := self._effective(stored.get(k), k)) is not None]

    def enabled(self) -> list[FacetTypeDescriptor]:
        """The enabled types."""
        return [d for d in self.all() if d.enabled]

    def mandatory(self) -> list[FacetTypeDescriptor]:
        """The mandatory (platform core) types."""
        return [d for d in self.all() if d.mandatory]

    def for_target_type(self, target: TargetType | str) -> list[FacetTypeDescriptor]:
        """Enabled types that may attach to ``target`` (``ANY``: those without a restriction)."""
        target = TargetType.parse(target)
        if target is TargetType.ANY:
            return [d for d in self.enabled() if not d.restricts_targets()]
        return [d for d in self.enabled() if d.applies_to(target)]

    def is_allowed(self, type_key: str) -> bool:
        """False only for a known, disabled type (unknown types are untyped bags, allowed)."""
        d = self.get(type_key)
        return d is None or d.enabled

    def is_mandatory(self, type_key: str) -> bool:
        """Whether ``type_key`` is a mandatory platform type."""
        d = self.get(type_key)
        return d is not None and d.mandatory

    def is_applicable_to(self, type_key: str, target: TargetType | str) -> bool:
        """Whether a facet of ``type_key`` may attach to ``target`` (unknown types: yes)."""
        d = self.get(type_key)
        return d is None or d.applies_to(TargetType.parse(target, allow_any=False))

    # ------------------------------------------------------------ writes

    def register(self, descriptor: FacetTypeDescriptor, *, actor: str | None = None) -> FacetTypeDescriptor:
        """Add a custom type (``ALREADY_EXISTS`` when the key is taken; its schema must be valid)."""
        self._check_new(descriptor)
        if self.get(descriptor.type_key) is not None:
            raise GridcatError(
                ALREADY_EXISTS, f"facet type {descriptor.type_key!r} already exists", [{"typeKey": descriptor.type_key}]
            )
        now, who = self._clock(), actor or self.actor
        stored = descriptor.with_changes(created_at=now, updated_at=now, created_by=who, updated_by=who, revision=1)
        self.repository.write(puts=[stored], expected={descriptor.type_key: 0})
        return self.require(descriptor.type_key)

    def update(
        self,
        descriptor: FacetTypeDescriptor,
        *,
        expected_revision: int | None = None,
        actor: str | None = None,
    ) -> FacetTypeDescriptor:
        """Replace an existing type's definition; mandatory types keep their platform fields.

        Disabling a mandatory type, clearing its ``mandatory`` flag or changing its
        ``applicableTo``, ``version`` or ``contentSchema`` (omitted = keep the platform's) is
        ``FAILED_PRECONDITION``; so is an
        ``expected_revision`` that is not the stored one. An identical definition changes nothing.
        """
        stored, outcome = self._planned_update(descriptor, expected_revision, actor)
        if outcome == OUTCOME_UNCHANGED:
            return self.require(descriptor.type_key)
        expected = {descriptor.type_key: expected_revision} if expected_revision is not None else None
        self.repository.write(puts=[stored], expected=expected)
        return self.require(descriptor.type_key)

    def apply(
        self, descriptors: Sequence[FacetTypeDescriptor], *, actor: str | None = None
    ) -> list[tuple[FacetTypeDescriptor, str]]:
        """Create or update each descriptor (one atomic write; all are checked before any is stored)."""
        keys = [d.type_key for d in descriptors]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise invalid_argument(f"facet type(s) {', '.join(dupes)} given more than once")
        puts, outcomes, expected = [], [], {}
        for d in descriptors:
            current = self.get(d.type_key)
            if current is None:
                self._check_new(d)
                now, who = self._clock(), actor or self.actor
                puts.append(d.with_changes(created_at=now, updated_at=now, created_by=who, updated_by=who, revision=1))
                outcomes.append(OUTCOME_CREATED)
                expected[d.type_key] = 0
            else:
                stored, outcome = self._planned_update(d, None, actor)
                outcomes.append(outcome)
                if outcome != OUTCOME_UNCHANGED:
                    puts.append(stored)
                    expected[d.type_key] = current.revision
        if puts:
            self.repository.write(puts=puts, expected=expected)
        return [(self.require(d.type_key), o) for d, o in zip(descriptors, outcomes)]

    def delete(self, type_key: str, *, expected_revision: int | None = None) -> FacetTypeDescriptor:
        """Remove a custom type; platform types cannot be deleted (``FAILED_PRECONDITION``)."""
        current = self.require(type_key)
        if type_key in MANDATORY_TYPE_KEYS:
            raise failed_precondition(
                f"facet type {type_key!r} is mandatory and cannot be deleted", {"typeKey": type_key}
            )
        if type_key in PLATFORM_TYPES:
            raise failed_precondition(
                f"facet type {type_key!r} is a platform type and cannot be deleted; disable it instead",
                {"typeKey": type_key},
            )
        expected = {type_key: expected_revision} if expected_revision is not None else {type_key: current.revision}
        self.repository.write(deletes=[type_key], expected=expected)
        return current

    def _check_new(self, d: FacetTypeDescriptor) -> None:
        check_type_key(d.type_key)
        if d.mandatory:
            raise invalid_argument(
                f"facet type {d.type_key!r}: only the platform's core types are mandatory",
                {"typeKey": d.type_key, "mandatory_types": sorted(MANDATORY_TYPE_KEYS)},
            )
        check_content_schema(d.content_schema, type_key=d.type_key)

    def _planned_update(
        self, d: FacetTypeDescriptor, expected_revision: int | None, actor: str | None
    ) -> tuple[FacetTypeDescriptor, str]:
        current = self.require(d.type_key)
        if expected_revision is not None and expected_revision != current.revision:
            raise failed_precondition(
                f"facet type {d.type_key!r} is at revision {current.revision}, not the expected {expected_revision}",
                {"typeKey": d.type_key, "current_revision": current.revision, "expected_revision": expected_revision},
            )
        if d.type_key in MANDATORY_TYPE_KEYS:
            platform = PLATFORM_TYPES[d.type_key]
            if not d.mandatory or not d.enabled:
                raise failed_precondition(
                    f"facet type {d.type_key!r} is mandatory: it cannot be disabled or made optional",
                    {"typeKey": d.type_key},
                )
            owned = ("applicable_to", "version", "content_schema")
            # omitted (None) means "the platform's"; a different value is an attempt to change it
            changed = [f for f in owned if getattr(d, f) is not None and getattr(d, f) != getattr(platform, f)]
            if changed:
                raise failed_precondition(
                    f"facet type {d.type_key!r} is a platform type: {', '.join(changed)} cannot change",
                    {"typeKey": d.type_key, "fields": changed},
                )
            d = platform.with_changes(display_name=d.display_name, description=d.description)
        else:
            if d.mandatory:
                raise invalid_argument(
                    f"facet type {d.type_key!r}: only the platform's core types are mandatory",
                    {"typeKey": d.type_key},
                )
            check_content_schema(d.content_schema, type_key=d.type_key)
        stored = self.repository.get(d.type_key)
        base = stored or current
        if stored is not None and base.definition() == d.definition():
            return stored, OUTCOME_UNCHANGED
        now = self._clock()
        planned = d.with_changes(
            created_at=base.created_at or now,
            created_by=base.created_by,
            updated_at=now,
            updated_by=actor or self.actor,
            revision=(stored.revision if stored else 0) + 1,
        )
        return planned, OUTCOME_UPDATED

    # ------------------------------------------------------------ validation

    def validate_content(
        self,
        type_key: str,
        content: Any,
        *,
        target: TargetType | str | None = None,
        entity_id: str | None = None,
        scope: str | None = None,
    ) -> ValidationResult:
        """Every problem of one facet's content: marker, disabled type, target type, JSON Schema."""
        return ValidationResult(tuple(self._content_issues(type_key, content, target, entity_id, scope)))

    def _content_issues(self, type_key, content, target, entity_id, scope) -> Iterable[ValidationIssue]:
        def issue(code: str, message: str, path: str = "$") -> ValidationIssue:
            return ValidationIssue(code, message, type_key=type_key, entity_id=entity_id, scope=scope, path=path)

        if not isinstance(content, dict):
            yield issue("CONTENT_INVALID", "facet content must be a JSON object")
            return
        marker = content.get(TYPE_MARKER)
        if marker is not None and marker != type_key:
            yield issue(
                "TYPE_MARKER_MISMATCH",
                f"_type {marker!r} disagrees with the facet's key {type_key!r}",
                f"$.{TYPE_MARKER}",
            )
        d = self.get(type_key)
        if d is None:
            return  # unknown type: an untyped bag
        if not d.enabled:
            yield issue("DISABLED_TYPE", f"facet type {type_key!r} is disabled in this deployment")
        if target is not None:
            target = TargetType.parse(target, allow_any=False)
            if not d.applies_to(target):
                allowed = ", ".join(sorted(t.value for t in d.applicable_to or ()))
                yield issue("NOT_APPLICABLE", f"facet type {type_key!r} applies to {allowed}, not {target.value}")
        if d.content_schema is not None:
            yield from validate_against_schema(
                d.content_schema, content, type_key=type_key, entity_id=entity_id, scope=scope
            )

    def validate_entity(self, entity: CatalogEntity) -> ValidationResult:
        """Every problem of every facet on ``entity`` (the facet-type catalog spec's ``validateEntityFacets``)."""
        issues: list[ValidationIssue] = []
        for type_key, scopes in entity.facets.items():
            for scope, content in scopes.items():
                issues.extend(self._content_issues(type_key, content, entity.type, entity.id, scope))
        return ValidationResult(tuple(issues))

    def missing_mandatory(self, entity: CatalogEntity) -> list[ValidationIssue]:
        """The mandatory types that apply to ``entity``'s type and that it does not carry."""
        return [
            ValidationIssue(
                "MISSING_MANDATORY",
                f"{entity.type.value} {entity.id!r} has no {d.type_key!r} facet (mandatory)",
                type_key=d.type_key,
                entity_id=entity.id,
            )
            for d in self.mandatory()
            if d.restricts_targets() and entity.type in d.applicable_to and d.type_key not in entity.facets  # type: ignore[operator]
        ]


def descriptors_by_key(descriptors: Iterable[FacetTypeDescriptor]) -> Mapping[str, FacetTypeDescriptor]:
    """``{typeKey: descriptor}``."""
    return {d.type_key: d for d in descriptors}
