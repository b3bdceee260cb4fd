"""The two structural rules: ``schema`` (the table's columns) and ``metadata_consistency``.

Both run on every run, whatever its size (an empty table still has a schema and metadata),
and a report only passes if both ran and passed. Each check returns a :class:`Verdict`; the
rules themselves (names, descriptions) are entries of
:mod:`gridcat_pipelines.validation.registry`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import pyarrow as pa

from gridcat_pipelines.feeds.models import ARROW_TYPES, FeedConfig
from gridcat_pipelines.state.keys import PartitionKey
from gridcat_pipelines.validation.verdict import Verdict


class RunMetadataLike(Protocol):
    """What validation reads from a run's ``metadata.json`` (the raw sink's ``RunMetadata``).

    Optional attributes, compared when present: the
    partition key fields ``source``, ``customer_id``, ``query_name``, ``logical_date``, and
    ``schema_fields()`` (the schema the data files were written with).
    """

    run_id: str
    schema_version: str
    record_count: int


# Key fields compared when the metadata carries them (``source`` is the partition's source;
# the Ads adapter that produced the run is ``source_name``, not compared).
_KEY_FIELDS = ("source", "customer_id", "query_name", "logical_date")

_TYPE_NAMES = {arrow_type: name for name, arrow_type in ARROW_TYPES.items()}


def type_name(arrow_type: pa.DataType) -> str:
    """The feed config's name of an Arrow type (``int64``, ``date32``...), else Arrow's own."""
    return _TYPE_NAMES.get(arrow_type, str(arrow_type))


def check_schema(schema: pa.Schema, feed: FeedConfig) -> tuple[Verdict, frozenset[str]]:
    """Rule ``schema``: every feed column present once with its declared type, and nothing else.

    Nullability is not checked (a declared non-nullable column may be written as nullable;
    nulls are the business rules' concern). Column order is not checked. Returns the result
    and the set of feed columns that are usable by the other rules (present, typed right).
    The failing count is the number of bad columns.
    """
    names = schema.names
    declared = {col.name: col for col in feed.columns}
    missing, wrong, duplicated, usable = [], [], [], set()
    for name, col in declared.items():
        positions = [i for i, n in enumerate(names) if n == name]
        if not positions:
            missing.append(name)
        elif len(positions) > 1:
            duplicated.append(name)
        elif schema.field(positions[0]).type != col.arrow_type:
            wrong.append((name, type_name(schema.field(positions[0]).type), col.type))
        else:
            usable.add(name)
    extra = sorted({n for n in names if n not in declared})
    parts, samples = [], []
    if missing:
        parts.append("missing: " + ", ".join(missing))
        samples += [{"column": n, "problem": "missing"} for n in missing]
    if wrong:
        parts.append("wrong type: " + ", ".join(f"{n} ({got}, want {want})" for n, got, want in wrong))
        samples += [{"column": n, "problem": "wrong type", "type": got, "want": want} for n, got, want in wrong]
    if duplicated:
        parts.append("duplicated: " + ", ".join(duplicated))
        samples += [{"column": n, "problem": "duplicated"} for n in duplicated]
    if extra:
        parts.append("extra: " + ", ".join(extra))
        samples += [{"column": n, "problem": "extra"} for n in extra]
    bad = len(missing) + len(wrong) + len(duplicated) + len(extra)
    if bad:
        return Verdict.fail(bad, "; ".join(parts), samples), frozenset(usable)
    return Verdict.ok(f"{len(declared)} columns as declared"), frozenset(usable)


def check_metadata(
    metadata: Any,
    feed: FeedConfig,
    *,
    row_count: int,
    schema: pa.Schema | None = None,
    run_id: str | None = None,
    key: PartitionKey | None = None,
    file_problems: Iterable[str] = (),
) -> Verdict:
    """Rule ``metadata_consistency``: the run's metadata describes the data that was read.

    Compared: ``record_count`` with the rows read, ``schema_version`` with the feed's,
    ``run_id`` with the run asked for, the key fields the metadata carries with the
    partition key, the column names and types the metadata recorded with the ``schema`` read
    (when both are known); plus the raw sink's ``file_problems`` (missing file, size, sha256
    or Parquet row count mismatch, files' rows not adding up to ``record_count``). The
    failing count is the number of problems.
    """
    problems: list[str] = []
    if run_id is not None and str(getattr(metadata, "run_id", "")).lower() != run_id.lower():
        problems.append(f"run_id {getattr(metadata, 'run_id', None)!r} is not the run validated ({run_id})")
    version = getattr(metadata, "schema_version", None)
    if version is None or str(version) != str(feed.schema_version):
        problems.append(f"schema_version {version!r}, feed declares {feed.schema_version!r}")
    record_count = getattr(metadata, "record_count", None)
    if record_count != row_count:
        problems.append(f"record_count {record_count!r}, data has {row_count} rows")
    if key is not None:
        wanted = key.to_json()
        for field_name in _KEY_FIELDS:
            want = wanted[field_name]
            have = getattr(metadata, field_name, None)
            if have is None:
                continue
            have_text = have.isoformat() if hasattr(have, "isoformat") else str(have)
            if have_text != want:
                problems.append(f"{field_name} {have_text!r} is not the partition's {want!r}")
    written = _written_columns(metadata)
    if written is not None and schema is not None:
        read = [(f.name, str(f.type)) for f in schema]
        if written != read:
            problems.append(
                f"data files were recorded with columns {_columns_text(written)}, read {_columns_text(read)}"
            )
    problems.extend(str(p) for p in file_problems)
    if problems:
        samples = [{"problem": p} for p in problems]
        return Verdict.fail(len(problems), "; ".join(problems), samples)
    return Verdict.ok(f"{row_count} rows, schema_version {version}")


def _written_columns(metadata: Any) -> list[tuple[str, str]] | None:
    fields = getattr(metadata, "schema_fields", None)
    if not callable(fields):
        return None
    try:
        return [(str(f["name"]), str(f["type"])) for f in fields()]
    except (TypeError, KeyError, ValueError):
        return None


def _columns_text(columns: list[tuple[str, str]]) -> str:
    return "[" + ", ".join(f"{n}: {t}" for n, t in columns) + "]"


def unreadable_run(problems: list[str]) -> Verdict:
    """Rule ``metadata_consistency`` for a run that could not be read (incomplete, missing,
    corrupt): one problem per sentence the sink gave."""
    return Verdict.fail(len(problems), "; ".join(problems), [{"problem": p} for p in problems])
