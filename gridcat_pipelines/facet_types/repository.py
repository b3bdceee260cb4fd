"""Where facet type descriptors are stored: one interface, a YAML file and the state database.

Every write is atomic (all puts and deletes of a call, or none) and checks an optional
expected revision per key (``0`` = must not exist yet); a revision that moved is
``FAILED_PRECONDITION``. The YAML repository reads the ``facet-types:`` section of a file and
is read-only unless opened ``writable`` (then it rewrites that section atomically and keeps
the file's other sections, e.g. ``entities:``).
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gridcat_pipelines.errors import ALREADY_EXISTS, GridcatError, failed_precondition, invalid_argument
from gridcat_pipelines.facet_types.model import FacetTypeDescriptor

FACET_TYPES_SECTION = "facet-types"
ENTITIES_SECTION = "entities"


class FacetTypeRepository(ABC):
    """Stores facet type descriptors (the seed's ``FacetTypeRepository``)."""

    read_only: bool = False

    @abstractmethod
    def get(self, type_key: str) -> FacetTypeDescriptor | None:
        """The stored descriptor of ``type_key``, or None."""

    @abstractmethod
    def get_all(self) -> list[FacetTypeDescriptor]:
        """Every stored descriptor, ordered by type key."""

    @abstractmethod
    def write(
        self,
        puts: Sequence[FacetTypeDescriptor] = (),
        deletes: Sequence[str] = (),
        expected: Mapping[str, int] | None = None,
    ) -> None:
        """Store ``puts`` and remove ``deletes`` atomically, after checking ``expected`` revisions."""

    def save(self, descriptor: FacetTypeDescriptor) -> None:
        """Store one descriptor (insert or replace)."""
        self.write(puts=[descriptor])

    def delete(self, type_key: str) -> None:
        """Remove one descriptor (no-op when absent)."""
        self.write(deletes=[type_key])


def check_expected(current: Mapping[str, int], expected: Mapping[str, int] | None) -> None:
    """``FAILED_PRECONDITION`` when a stored revision differs from the expected one (0 = absent)."""
    for key, want in (expected or {}).items():
        have = current.get(key, 0)
        if have != want:
            if want == 0:
                raise GridcatError(ALREADY_EXISTS, f"facet type {key!r} already exists", [{"typeKey": key}])
            raise failed_precondition(
                f"facet type {key!r} is at revision {have}, not the expected {want}",
                {"typeKey": key, "current_revision": have, "expected_revision": want},
            )


class InMemoryFacetTypeRepository(FacetTypeRepository):
    """A dict-backed repository (tests, and the read-only merge of a YAML file)."""

    def __init__(self, descriptors: Sequence[FacetTypeDescriptor] = ()):
        self._items = {d.type_key: d for d in descriptors}

    def get(self, type_key: str) -> FacetTypeDescriptor | None:
        """The stored descriptor, or None."""
        return self._items.get(type_key)

    def get_all(self) -> list[FacetTypeDescriptor]:
        """Every descriptor by type key."""
        return [self._items[k] for k in sorted(self._items)]

    def write(self, puts=(), deletes=(), expected=None) -> None:
        """Atomic put/delete with revision checks."""
        check_expected({k: d.revision for k, d in self._items.items()}, expected)
        items = dict(self._items)
        for key in deletes:
            items.pop(key, None)
        for d in puts:
            items[d.type_key] = d
        self._items = items


class YamlFacetTypeRepository(FacetTypeRepository):
    """The ``facet-types:`` section of a YAML file (read-only unless ``writable``)."""

    def __init__(self, path: str | Path, *, writable: bool = False):
        self.path = Path(path)
        self.read_only = not writable

    def _document(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        doc = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        if not isinstance(doc, dict):
            raise invalid_argument(f"{self.path}: must be a mapping with a {FACET_TYPES_SECTION}: section")
        return doc

    def _load(self) -> dict[str, FacetTypeDescriptor]:
        items = self._document().get(FACET_TYPES_SECTION) or []
        if not isinstance(items, list):
            raise invalid_argument(f"{self.path}: {FACET_TYPES_SECTION} must be a list")
        found: dict[str, FacetTypeDescriptor] = {}
        for i, raw in enumerate(items):
            d = FacetTypeDescriptor.from_json(raw, where=f"{self.path}: {FACET_TYPES_SECTION}[{i}]", keep_audit=True)
            if d.type_key in found:
                raise invalid_argument(f"{self.path}: {FACET_TYPES_SECTION}[{i}]: duplicate typeKey {d.type_key!r}")
            found[d.type_key] = d
        return found

    def get(self, type_key: str) -> FacetTypeDescriptor | None:
        """The descriptor in the file, or None."""
        return self._load().get(type_key)

    def get_all(self) -> list[FacetTypeDescriptor]:
        """Every descriptor in the file, by type key."""
        items = self._load()
        return [items[k] for k in sorted(items)]

    def write(self, puts=(), deletes=(), expected=None) -> None:
        """Rewrite the ``facet-types:`` section (``FAILED_PRECONDITION`` when read-only)."""
        if self.read_only:
            raise failed_precondition(f"facet type file {self.path} is read-only")
        items = self._load()
        check_expected({k: d.revision for k, d in items.items()}, expected)
        for key in deletes:
            items.pop(key, None)
        for d in puts:
            items[d.type_key] = d
        doc = self._document()
        doc[FACET_TYPES_SECTION] = [_compact(items[k].to_json()) for k in sorted(items)]
        atomic_write_yaml(self.path, doc)


def _compact(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def atomic_write_yaml(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` to ``path`` via a temporary file and a rename (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yaml.safe_dump(doc, fh, sort_keys=False, allow_unicode=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
