"""What a raw run records about itself (``metadata.json``) and what a listing reports.

``metadata.json`` is the run's commit marker: it is written last, and a run without it is
incomplete. Its JSON form carries ``metadata_version`` so later writers can evolve it;
:meth:`RunMetadata.from_json` refuses versions it does not know.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from gridcat_pipelines.errors import GridcatError, invalid_argument
from gridcat_pipelines.raw_sink.layout import check_part_file_name
from gridcat_pipelines.run_ids import parse_run_id
from gridcat_pipelines.state.keys import PartitionKey

METADATA_VERSION = 1


def schema_to_json(schema: pa.Schema) -> str:
    """The schema as a canonical JSON list of ``{"name", "type", "nullable"}``."""
    fields = [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]
    return json.dumps(fields, separators=(",", ":"))


@dataclass(frozen=True)
class RunFile:
    """One data file of a run: its path relative to the run directory, size, rows, sha256."""

    path: str
    bytes: int
    rows: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        """The file entry as JSON-safe values."""
        return {"path": self.path, "bytes": self.bytes, "rows": self.rows, "sha256": self.sha256}


@dataclass(frozen=True)
class RunMetadata:
    """The committed description of one raw run (the content of its ``metadata.json``)."""

    run_id: str
    source: str
    customer_id: str
    query_name: str
    logical_date: date
    schema_version: str
    record_count: int
    extracted_at: datetime  # UTC: when the last batch of the pull was received
    files: tuple[RunFile, ...]
    column_stats: dict[str, dict[str, Any]]
    gaql: str | None
    source_name: str | None  # the Ads source that produced it, e.g. "synthetic"
    arrow_schema: str  # schema_to_json() of the schema the data files were written with

    @property
    def key(self) -> PartitionKey:
        """The partition this run belongs to."""
        return PartitionKey(self.source, self.customer_id, self.query_name, self.logical_date)

    def schema_fields(self) -> list[dict[str, Any]]:
        """``arrow_schema`` parsed: a list of ``{"name", "type", "nullable"}``."""
        return json.loads(self.arrow_schema)

    def to_json(self) -> dict[str, Any]:
        """The metadata as JSON-safe values (what ``metadata.json`` holds)."""
        return {
            "metadata_version": METADATA_VERSION,
            "run_id": self.run_id,
            "source": self.source,
            "customer_id": self.customer_id,
            "query_name": self.query_name,
            "logical_date": self.logical_date.isoformat(),
            "schema_version": self.schema_version,
            "record_count": self.record_count,
            "extracted_at": self.extracted_at.astimezone(UTC).isoformat(),
            "source_name": self.source_name,
            "gaql": self.gaql,
            "arrow_schema": self.schema_fields(),
            "files": [f.to_json() for f in self.files],
            "column_stats": self.column_stats,
        }

    def to_json_bytes(self) -> bytes:
        """``to_json()`` serialised as UTF-8 (indented, as written to ``metadata.json``)."""
        return (json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str | bytes) -> RunMetadata:
        """Parse ``to_json()`` output (a mapping, or its JSON text).

        Raises ``INVALID_ARGUMENT`` naming the first problem when the content is not valid
        run metadata (bad JSON, a missing or mistyped field, an unknown metadata_version).
        """
        try:
            if isinstance(data, (str, bytes, bytearray)):
                data = json.loads(data)
            if not isinstance(data, Mapping):
                raise ValueError("expected a JSON object")
            return _parse(data)
        except GridcatError as exc:
            raise invalid_argument(f"not valid run metadata: {exc.message}") from None
        except (ValueError, TypeError, KeyError) as exc:
            detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise invalid_argument(f"not valid run metadata: {detail}") from None


def _parse(data: Mapping[str, Any]) -> RunMetadata:
    version = data.get("metadata_version")
    if version != METADATA_VERSION:
        raise ValueError(f"metadata_version {version!r} is not supported (expected {METADATA_VERSION})")
    key = PartitionKey.parse(data["customer_id"], data["query_name"], data["logical_date"], data["source"])
    if key.customer_id != data["customer_id"]:
        raise ValueError(f"customer_id {data['customer_id']!r} is not normalised")
    extracted_at = datetime.fromisoformat(_text(data, "extracted_at"))
    if extracted_at.tzinfo is None:
        raise ValueError("extracted_at has no time zone")
    schema = data["arrow_schema"]
    if not isinstance(schema, list) or not all(
        isinstance(f, dict) and {"name", "type", "nullable"} <= f.keys() for f in schema
    ):
        raise ValueError("arrow_schema must be a list of {name, type, nullable}")
    stats = data["column_stats"]
    if not isinstance(stats, dict):
        raise ValueError("column_stats must be an object")
    return RunMetadata(
        run_id=parse_run_id(_text(data, "run_id")),
        source=key.source,
        customer_id=key.customer_id,
        query_name=key.query_name,
        logical_date=key.logical_date,
        schema_version=_text(data, "schema_version"),
        record_count=_count(data, "record_count"),
        extracted_at=extracted_at.astimezone(UTC),
        files=tuple(_parse_file(f) for f in _list(data, "files")),
        column_stats=stats,
        gaql=_optional_text(data, "gaql"),
        source_name=_optional_text(data, "source_name"),
        arrow_schema=json.dumps(schema, separators=(",", ":")),
    )


def _parse_file(entry: Any) -> RunFile:
    if not isinstance(entry, dict):
        raise ValueError("each files entry must be an object")
    path = _text(entry, "path")
    check_part_file_name(path)
    sha = _text(entry, "sha256")
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ValueError(f"sha256 of {path} is not 64 lowercase hex digits")
    return RunFile(path=path, bytes=_count(entry, "bytes"), rows=_count(entry, "rows"), sha256=sha)


def _text(data: Mapping[str, Any], field: str) -> str:
    value = data[field]
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string")
    return value


def _optional_text(data: Mapping[str, Any], field: str) -> str | None:
    return None if data.get(field) is None else _text(data, field)


def _count(data: Mapping[str, Any], field: str) -> int:
    value = data[field]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{field} must be a non-negative integer")
    return value


def _list(data: Mapping[str, Any], field: str) -> list[Any]:
    value = data[field]
    if not isinstance(value, list):
        raise ValueError(f"{field} must be a list")
    return value


@dataclass(frozen=True)
class RawRunInfo:
    """One run directory found by a listing; ``complete`` means it has ``metadata.json``."""

    key: PartitionKey
    run_id: str
    uri: str
    complete: bool
    created_at: datetime  # from the UUIDv7 run id (UTC, millisecond precision)
