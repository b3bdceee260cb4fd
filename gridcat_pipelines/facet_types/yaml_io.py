"""YAML export and import of the whole catalog: a ``facet-types:`` and an ``entities:`` section.

Export leaves out audit fields and revisions (they belong to the store, not the document),
so export → import into another store → export gives the same document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.facet_types.catalog import FacetTypeCatalog
from gridcat_pipelines.facet_types.entities import CatalogEntities, WriteReport
from gridcat_pipelines.facet_types.model import CatalogEntity, FacetTypeDescriptor
from gridcat_pipelines.facet_types.repository import ENTITIES_SECTION, FACET_TYPES_SECTION


def export_catalog(catalog: FacetTypeCatalog, entities: CatalogEntities | None = None) -> dict[str, Any]:
    """The catalog as a document: every effective facet type and (when given) every entity."""
    doc: dict[str, Any] = {
        FACET_TYPES_SECTION: [{k: v for k, v in d.to_json(audit=False).items() if v is not None} for d in catalog.all()]
    }
    if entities is not None:
        doc[ENTITIES_SECTION] = [
            {**e.to_json(audit=False), **({"origin": e.origin} if e.origin else {})} for e in entities.all()
        ]
    return doc


def dump_yaml(doc: dict[str, Any]) -> str:
    """``doc`` as YAML text (keys in document order)."""
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def read_document(path: str | Path) -> dict[str, Any]:
    """A catalog document from a YAML (or JSON) file; ``INVALID_ARGUMENT`` names what is wrong."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise invalid_argument(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise invalid_argument(f"{path}: not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(doc, dict):
        raise invalid_argument(
            f"{path}: must be a mapping with a {FACET_TYPES_SECTION}: and/or {ENTITIES_SECTION}: section"
        )
    unknown = sorted(set(doc) - {FACET_TYPES_SECTION, ENTITIES_SECTION})
    if unknown:
        raise invalid_argument(f"{path}: unknown section(s) {', '.join(unknown)}")
    return doc


def parse_document(
    doc: dict[str, Any], *, where: str = "document"
) -> tuple[list[FacetTypeDescriptor], list[CatalogEntity]]:
    """The descriptors and entities of a catalog document."""
    types = doc.get(FACET_TYPES_SECTION) or []
    items = doc.get(ENTITIES_SECTION) or []
    if not isinstance(types, list) or not isinstance(items, list):
        raise invalid_argument(f"{where}: {FACET_TYPES_SECTION} and {ENTITIES_SECTION} must be lists")
    descriptors = [
        FacetTypeDescriptor.from_json(t, where=f"{where}: {FACET_TYPES_SECTION}[{i}]") for i, t in enumerate(types)
    ]
    entities = [CatalogEntity.from_json(e, where=f"{where}: {ENTITIES_SECTION}[{i}]") for i, e in enumerate(items)]
    return descriptors, entities


def import_catalog(
    doc: dict[str, Any],
    catalog: FacetTypeCatalog,
    entities: CatalogEntities | None = None,
    *,
    where: str = "document",
) -> tuple[list[tuple[FacetTypeDescriptor, str]], WriteReport]:
    """Apply the document's facet types, then save its entities (each step all-or-nothing)."""
    descriptors, items = parse_document(doc, where=where)
    if items and entities is None:
        raise invalid_argument(f"{where}: has entities but no entity store was given")
    if items and descriptors:
        _precheck_entities(catalog, entities, descriptors, items)
    applied = catalog.apply(descriptors) if descriptors else []
    report = entities.write_all(items) if items and entities is not None else WriteReport()
    return applied, report


def _precheck_entities(catalog, entities, descriptors, items) -> None:
    """Validate the entities against the catalog as it will be, before anything is stored."""
    from dataclasses import replace

    from gridcat_pipelines.facet_types.entities import with_markers
    from gridcat_pipelines.facet_types.repository import InMemoryFacetTypeRepository

    planned = {d.type_key: d for d in catalog.repository.get_all()}
    planned.update({d.type_key: d for d in descriptors})
    future = FacetTypeCatalog(InMemoryFacetTypeRepository(list(planned.values())), catalog.config)
    probe = CatalogEntities(future, entities.repository)
    issues = [i for e in items for i in probe.problems(with_markers(replace(e)))]
    if issues:
        first = issues[0]
        raise invalid_argument(
            f"{len(issues)} facet validation issue(s); first: {first.entity_id}: {first.path}: {first.message}",
            *[i.to_json() for i in issues],
        )
