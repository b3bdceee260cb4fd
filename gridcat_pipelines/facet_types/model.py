"""Facet type descriptors and catalog entities (the facet-type catalog spec) as plain typed data.

JSON/YAML field names are the seed's: ``typeKey``, ``mandatory``, ``enabled``, ``displayName``,
``description``, ``applicableTo``, ``version``, ``contentSchema`` and the audit fields
``createdAt``, ``updatedAt``, ``createdBy``, ``updatedBy``. ``version`` is the seed's schema
version string; ``revision`` is the row version that expected-revision preconditions check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any

from gridcat_pipelines.errors import invalid_argument

TYPE_MARKER = "_type"
DEFAULT_SCOPE = "global"
_TYPE_KEY_RE = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_ENTITY_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}$")
_SCOPE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,127}$")


class TargetType(str, Enum):
    """What a facet type may attach to (``ANY`` = every entity type)."""

    CATALOG = "CATALOG"
    SCHEMA = "SCHEMA"
    TABLE = "TABLE"
    ATTRIBUTE = "ATTRIBUTE"
    CONCEPT = "CONCEPT"
    ANY = "ANY"

    @classmethod
    def parse(cls, value: Any, *, allow_any: bool = True, field_name: str = "type") -> TargetType:
        """``value`` as a target type; ``INVALID_ARGUMENT`` names the allowed values otherwise."""
        allowed = [t.value for t in cls if allow_any or t is not cls.ANY]
        text = value.value if isinstance(value, TargetType) else value
        if not isinstance(text, str) or text.upper() not in allowed:
            raise invalid_argument(f"{field_name} {value!r} is not one of {', '.join(allowed)}")
        return cls(text.upper())


ENTITY_TYPES = tuple(t for t in TargetType if t is not TargetType.ANY)


def check_type_key(type_key: Any) -> str:
    """A valid facet type key (lower-case words joined by ``-``/``_``) or ``INVALID_ARGUMENT``."""
    if not isinstance(type_key, str) or not _TYPE_KEY_RE.match(type_key) or len(type_key) > 100:
        raise invalid_argument(
            f"typeKey {type_key!r} must be lower-case letters and digits joined by '-' or '_' (max 100)"
        )
    return type_key


def check_entity_id(entity_id: Any) -> str:
    """A valid entity id (letters, digits, ``_ . -``; max 255) or ``INVALID_ARGUMENT``."""
    if not isinstance(entity_id, str) or not _ENTITY_ID_RE.match(entity_id):
        raise invalid_argument(f"entity id {entity_id!r} must be letters, digits, '_', '.', '-' (max 255)")
    return entity_id


def check_scope(scope: Any) -> str:
    """A valid facet scope name (e.g. ``global``) or ``INVALID_ARGUMENT``."""
    if not isinstance(scope, str) or not _SCOPE_RE.match(scope):
        raise invalid_argument(f"facet scope {scope!r} must be letters, digits, '_', '.', ':', '-'")
    return scope


@dataclass(frozen=True)
class FacetTypeDescriptor:
    """One facet type: what it is, where it may attach, how its content is validated."""

    type_key: str
    mandatory: bool = False
    enabled: bool = True
    display_name: str | None = None
    description: str | None = None
    applicable_to: frozenset[TargetType] | None = None  # None = ANY
    version: str | None = None
    content_schema: dict[str, Any] | None = None  # None = content not validated
    created_at: datetime | None = None
    updated_at: datetime | None = None
    created_by: str | None = None
    updated_by: str | None = None
    revision: int = 0  # 0 = not stored yet

    def restricts_targets(self) -> bool:
        """True when ``applicableTo`` limits the entity types (non-empty and without ``ANY``)."""
        return bool(self.applicable_to) and TargetType.ANY not in self.applicable_to

    def applies_to(self, target: TargetType) -> bool:
        """Whether a facet of this type may attach to an entity of type ``target``."""
        return not self.restricts_targets() or target in self.applicable_to  # type: ignore[operator]

    def definition(self) -> tuple:
        """The fields an operator sets (no audit, no revision): equal definitions mean no change."""
        return (
            self.type_key,
            self.mandatory,
            self.enabled,
            self.display_name,
            self.description,
            _sorted_targets(self.applicable_to),
            self.version,
            self.content_schema,
        )

    def to_json(self, *, audit: bool = True) -> dict[str, Any]:
        """The descriptor with the facet-type catalog spec's field names (``audit=False`` leaves audit fields out)."""
        data: dict[str, Any] = {
            "typeKey": self.type_key,
            "mandatory": self.mandatory,
            "enabled": self.enabled,
            "displayName": self.display_name,
            "description": self.description,
            "applicableTo": _sorted_targets(self.applicable_to),
            "version": self.version,
            "contentSchema": self.content_schema,
        }
        if audit:
            data.update(
                createdAt=_iso(self.created_at),
                updatedAt=_iso(self.updated_at),
                createdBy=self.created_by,
                updatedBy=self.updated_by,
                revision=self.revision,
            )
        return data

    @classmethod
    def from_json(cls, data: Any, *, where: str = "facet type", keep_audit: bool = False) -> FacetTypeDescriptor:
        """A descriptor from seed-named fields (YAML/JSON); audit fields and revision are kept
        only with ``keep_audit`` (a repository reading its own file)."""
        if not isinstance(data, dict):
            raise invalid_argument(f"{where}: must be a mapping with typeKey, displayName, ...")
        known = {
            "typeKey",
            "mandatory",
            "enabled",
            "displayName",
            "description",
            "applicableTo",
            "version",
            "contentSchema",
            "createdAt",
            "updatedAt",
            "createdBy",
            "updatedBy",
            "revision",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise invalid_argument(f"{where}: unknown field(s) {', '.join(unknown)}", {"fields": unknown})
        type_key = check_type_key(data.get("typeKey"))
        where = f"{where} {type_key!r}"
        for flag in ("mandatory", "enabled"):
            if flag in data and not isinstance(data[flag], bool):
                raise invalid_argument(f"{where}: {flag} must be true or false")
        for text in ("displayName", "description", "version"):
            value = data.get(text)
            if value is not None and not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise invalid_argument(f"{where}: {text} must be a string")
        schema = data.get("contentSchema")
        if schema is not None and not isinstance(schema, (dict, bool)):
            raise invalid_argument(f"{where}: contentSchema must be a JSON Schema object")
        return cls(
            type_key=type_key,
            mandatory=data.get("mandatory", False),
            enabled=data.get("enabled", True),
            display_name=_text(data.get("displayName")),
            description=_text(data.get("description")),
            applicable_to=parse_targets(data.get("applicableTo"), where=where),
            version=_text(data.get("version")),
            content_schema=schema,
            **(_audit_from_json(data) if keep_audit else {}),
        )

    def with_changes(self, **changes: Any) -> FacetTypeDescriptor:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)


def parse_targets(value: Any, *, where: str = "facet type") -> frozenset[TargetType] | None:
    """``applicableTo`` as a set of target types; ``None``/empty means ANY."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise invalid_argument(f"{where}: applicableTo must be a list of target types")
    targets = frozenset(TargetType.parse(v, field_name=f"{where}: applicableTo value") for v in value)
    return targets or None


def _sorted_targets(targets: frozenset[TargetType] | None) -> list[str] | None:
    if not targets:
        return None
    order = list(TargetType)
    return [t.value for t in sorted(targets, key=order.index)]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _audit_from_json(data: dict[str, Any]) -> dict[str, Any]:
    def when(value: Any) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(str(value))
        except ValueError:
            raise invalid_argument(f"audit timestamp {value!r} is not ISO 8601") from None

    revision = data.get("revision") or 0
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 0:
        raise invalid_argument(f"revision {revision!r} must be a non-negative integer")
    return {
        "created_at": when(data.get("createdAt")),
        "updated_at": when(data.get("updatedAt")),
        "created_by": data.get("createdBy"),
        "updated_by": data.get("updatedBy"),
        "revision": revision,
    }


@dataclass(frozen=True)
class CatalogEntity:
    """A catalog entity and its facets: ``facets[type_key][scope]`` is a JSON bag with ``_type``."""

    id: str
    type: TargetType
    name: str
    parent_id: str | None = None
    schema_name: str | None = None
    table_name: str | None = None
    attribute_name: str | None = None
    facets: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    origin: str | None = None  # "sync" for entities the feed sync owns
    created_at: datetime | None = None
    updated_at: datetime | None = None
    created_by: str | None = None
    updated_by: str | None = None
    revision: int = 0

    def definition(self) -> tuple:
        """Everything but audit fields and revision: equal definitions mean no change."""
        return (
            self.id,
            self.type,
            self.name,
            self.parent_id,
            self.schema_name,
            self.table_name,
            self.attribute_name,
            self.facets,
            self.origin,
        )

    def to_json(self, *, audit: bool = True) -> dict[str, Any]:
        """The entity with the facet-type catalog spec's field names (``id``, ``type``, ``facets`` ...)."""
        data: dict[str, Any] = {"id": self.id, "type": self.type.value, "name": self.name}
        for key, value in (
            ("parentId", self.parent_id),
            ("schemaName", self.schema_name),
            ("tableName", self.table_name),
            ("attributeName", self.attribute_name),
        ):
            if value is not None:
                data[key] = value
        data["facets"] = self.facets
        if audit:
            data.update(
                origin=self.origin,
                createdAt=_iso(self.created_at),
                updatedAt=_iso(self.updated_at),
                createdBy=self.created_by,
                updatedBy=self.updated_by,
                revision=self.revision,
            )
        return data

    @classmethod
    def from_json(cls, data: Any, *, where: str = "entity", keep_audit: bool = False) -> CatalogEntity:
        """An entity from seed-named fields; ``_type`` markers are not touched here."""
        if not isinstance(data, dict):
            raise invalid_argument(f"{where}: must be a mapping with id, type, facets")
        known = {
            "id",
            "type",
            "name",
            "parentId",
            "schemaName",
            "tableName",
            "attributeName",
            "facets",
            "origin",
            "createdAt",
            "updatedAt",
            "createdBy",
            "updatedBy",
            "revision",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise invalid_argument(f"{where}: unknown field(s) {', '.join(unknown)}", {"fields": unknown})
        entity_id = check_entity_id(data.get("id"))
        where = f"{where} {entity_id!r}"
        entity_type = TargetType.parse(data.get("type"), allow_any=False, field_name=f"{where}: type")
        facets = data.get("facets") or {}
        if not isinstance(facets, dict):
            raise invalid_argument(f"{where}: facets must map type keys to scopes")
        parsed: dict[str, dict[str, dict[str, Any]]] = {}
        for type_key, scopes in facets.items():
            check_type_key(type_key)
            if not isinstance(scopes, dict) or not scopes:
                raise invalid_argument(f"{where}: facets.{type_key} must map scopes (e.g. global) to content")
            parsed[type_key] = {}
            for scope, content in scopes.items():
                check_scope(scope)
                if not isinstance(content, dict):
                    raise invalid_argument(f"{where}: facets.{type_key}.{scope} must be a mapping")
                parsed[type_key][scope] = dict(content)
        name = data.get("name") or entity_id.rsplit(".", 1)[-1]
        return cls(
            id=entity_id,
            type=entity_type,
            name=str(name),
            parent_id=data.get("parentId"),
            schema_name=data.get("schemaName"),
            table_name=data.get("tableName"),
            attribute_name=data.get("attributeName"),
            facets=parsed,
            origin=data.get("origin"),
            **(_audit_from_json(data) if keep_audit else {}),
        )


@dataclass(frozen=True)
class ValidationIssue:
    """One problem found by validation, with the JSON path of the offending value."""

    code: str  # DISABLED_TYPE, NOT_APPLICABLE, CONTENT_INVALID, TYPE_MARKER_MISMATCH, MISSING_MANDATORY, ...
    message: str
    type_key: str | None = None
    entity_id: str | None = None
    scope: str | None = None
    path: str = "$"

    def to_json(self) -> dict[str, Any]:
        """The issue as JSON (``entityId``, ``typeKey``, ``scope``, ``path``, ``code``, ``message``)."""
        return {
            "entityId": self.entity_id,
            "typeKey": self.type_key,
            "scope": self.scope,
            "path": self.path,
            "code": self.code,
            "message": self.message,
        }


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of validating facet content or an entity: valid iff no issues."""

    issues: tuple[ValidationIssue, ...] = ()

    @property
    def valid(self) -> bool:
        """No issues."""
        return not self.issues

    def paths(self) -> list[str]:
        """The JSON paths of every issue, in order."""
        return [i.path for i in self.issues]

    def to_json(self) -> dict[str, Any]:
        """``{"valid", "issues": [...]}``."""
        return {"valid": self.valid, "issues": [i.to_json() for i in self.issues]}
