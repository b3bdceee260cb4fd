"""A feed's row JSON Schema compiled into vectorised Arrow checks (rule ``row_schema``).

The feed's ``row_schema`` (draft 2020-12) describes one row as a JSON object keyed by column
name. Instead of converting every row to a dict and running ``jsonschema`` per row, each
supported keyword inside ``properties`` is compiled once into a function that turns a column
into a boolean *violation mask* with ``pyarrow.compute``; a row fails when any mask is true.
The verdict per row equals ``Draft202012Validator(schema, format_checker=FormatChecker())
.is_valid(row)`` where the row is the JSON view of the Arrow values:

===========  =======================================================================
Arrow type   JSON value
===========  =======================================================================
int64        integer (and number)
double       number; also integer when finite and integral (``2.0``), as jsonschema
string       string
date32       string: the ISO date ``YYYY-MM-DD`` (always a valid ``format: date``)
bool         boolean
null         ``null`` (the key is present: every feed column is a key of every row)
===========  =======================================================================

Supported inside ``properties``: ``type`` (integer, number, string, boolean, null, or a list
of them), ``enum``, ``const``, ``minimum``, ``maximum``, ``exclusiveMinimum``,
``exclusiveMaximum``, ``minLength``, ``maxLength``, ``pattern``, ``format: date``, boolean
subschemas, and annotations (``title``, ``description``, ...). At the top level: ``type:
object``, ``properties``, ``required`` (feed columns only), ``additionalProperties``
(boolean or a subschema for the unlisted columns) and annotations. Anything else raises
:class:`RowSchemaError` when the schema is compiled; call :func:`compile_row_schema` for
every feed when the config is loaded to fail there rather than at the first validation.

jsonschema semantics kept exactly: ``null`` fails ``type`` unless ``"null"`` is listed, and
``enum``/``const`` unless null is a member; numeric keywords ignore non-numbers, string
keywords and ``format`` ignore non-strings; ``NaN`` is a number that no bound rejects;
``enum`` compares numbers by value (``1 == 1.0``, ``-0.0 == 0.0``) but never booleans with
numbers; bounds are compared exactly (an int64 column against ``0.5``, a double column
against an integer bound above 2**53).

Regex dialect: JSON Schema specifies ``pattern`` as an unanchored ECMA-262 regex search and
``jsonschema`` runs it with Python's ``re.search``; here it runs as RE2
(``pyarrow.compute.match_substring_regex``), also an unanchored search. The three agree on
the common subset (literals, classes, ``^``, quantifiers, groups, alternation). They differ
on: look-around and back-references (not in RE2: such a pattern is rejected at compile
time); ``$``, which in Python also matches before a final newline but in RE2 only at the
very end (as in ECMA-262); ``\\d``, ``\\w``, ``\\s`` and ``\\b``, which are Unicode-aware
in Python and ASCII-only in RE2. Patterns written with explicit ASCII classes (``[0-9]``,
``[A-Z]``) behave the same in all three on values without a trailing newline.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import jsonschema
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gridcat_pipelines.errors import INVALID_ARGUMENT, GridcatError
from gridcat_pipelines.feeds.models import ColumnSpec, FeedConfig
from gridcat_pipelines.validation.keyword_masks import (
    BOUND_OPS,
    KIND_OF_ARROW,
    KIND_OF_TYPE,
    SCALAR_TYPES,
    ColumnValues,
    Violations,
    all_rows,
    bound_mask,
    check_pattern,
    date_format_mask,
    enum_mask,
    length_mask,
    pattern_mask,
    type_mask,
)
from gridcat_pipelines.validation.samples import first_indices, row_at
from gridcat_pipelines.validation.verdict import MAX_SAMPLES

PROPERTY_KEYWORDS = (
    "type",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "format",
)
ANNOTATION_KEYWORDS = frozenset(
    {"title", "description", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly"}
)
TOP_LEVEL_KEYWORDS = (
    frozenset({"$schema", "$id", "type", "properties", "required", "additionalProperties"}) | ANNOTATION_KEYWORDS
)
SUPPORTED_FORMATS = ("date",)
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


class RowSchemaError(GridcatError):
    """A feed's ``row_schema`` is malformed or uses something the vectorised validator does not support."""

    def __init__(self, feed: str, message: str):
        super().__init__(INVALID_ARGUMENT, f"feed {feed!r}: row_schema {message}")
        self.feed = feed


@dataclass(frozen=True)
class KeywordCheck:
    """One compiled keyword of one property: ``violations(values)`` is true where a row fails it."""

    column: str
    keyword: str  # a JSON Schema keyword, or "false" for a ``false`` subschema
    spec: Any  # the keyword's value in the schema
    violations: Violations = field(repr=False, compare=False)


@dataclass(frozen=True)
class RowSchemaVerdict:
    """The outcome of evaluating a compiled row schema over one table."""

    failing_rows: int
    row_count: int
    violations_by_check: tuple[tuple[str, str, int], ...]  # (column, keyword, failing rows), failing only
    samples: list[dict[str, Any]]
    checked_columns: tuple[str, ...]
    skipped_columns: tuple[str, ...]  # properties not evaluated: column missing or mistyped

    @property
    def passed(self) -> bool:
        """Whether every evaluated row satisfied the schema."""
        return self.failing_rows == 0

    def message(self) -> str:
        """A one-line description: which property/keyword failed how often, and what was skipped."""
        if self.passed:
            text = f"{self.row_count} rows satisfy the row schema"
        else:
            parts = ", ".join(f"{col}/{kw} ({n})" for col, kw, n in self.violations_by_check)
            text = f"{self.failing_rows} of {self.row_count} rows violate the row schema: {parts}"
        if self.skipped_columns:
            text += f"; not evaluated (column missing or mistyped): {', '.join(self.skipped_columns)}"
        return text


@dataclass(frozen=True)
class CompiledRowSchema:
    """A feed's row schema as vectorised checks; build it with :func:`compile_row_schema`."""

    feed_name: str
    schema: dict[str, Any] = field(repr=False)
    column_types: dict[str, pa.DataType] = field(repr=False)
    checks: tuple[KeywordCheck, ...]

    def usable_columns(self, table: pa.Table, columns: Iterable[str] | None = None) -> set[str]:
        """Columns of ``table`` with the feed's declared type (and in ``columns`` if given)."""
        allowed = None if columns is None else set(columns)
        usable = set()
        for name, declared in self.column_types.items():
            idx = table.schema.get_field_index(name)
            if idx < 0 or (allowed is not None and name not in allowed):
                continue
            if table.schema.field(idx).type == declared:
                usable.add(name)
        return usable

    def _masks(self, table: pa.Table, usable: set[str]) -> list[tuple[KeywordCheck, pa.ChunkedArray]]:
        values: dict[str, ColumnValues] = {}
        constant: dict[str, bool] = {}
        masks = []
        for check in self.checks:
            name = check.column
            if name not in usable:
                continue
            if name not in values:
                kind = KIND_OF_ARROW[self.column_types[name]]
                column = table.column(name)
                # A column with one non-null value on every row (a currency, a customer id)
                # is checked on that value once: worth it before a regex, not a hash lookup.
                costly = any(c.column == name and c.keyword in _PER_VALUE_COSTLY for c in self.checks)
                constant[name] = costly and _single_value(column)
                values[name] = ColumnValues(column.slice(0, 1) if constant[name] else column, kind)
            mask = check.violations(values[name])
            if constant[name]:
                mask = _broadcast(bool(mask[0].as_py()), table.num_rows)
            masks.append((check, mask))
        return masks

    def violations(self, table: pa.Table, columns: Iterable[str] | None = None) -> pa.ChunkedArray:
        """A boolean per row, true where the row violates the schema (evaluated columns only)."""
        usable = self.usable_columns(table, columns)
        masks = [m for _, m in self._masks(table, usable)]
        if not masks:
            return pa.chunked_array([pa.array(np.zeros(table.num_rows, dtype=bool))], pa.bool_())
        return reduce(pc.or_, masks)

    def evaluate(self, table: pa.Table, columns: Iterable[str] | None = None) -> RowSchemaVerdict:
        """Evaluate the schema over ``table``: failing row count, per-keyword counts, samples.

        Only properties whose column is present with the declared type (and, if given, in
        ``columns``) are evaluated; the others are reported as skipped.
        """
        usable = self.usable_columns(table, columns)
        skipped = tuple(sorted({c.column for c in self.checks if c.column not in usable}))
        checked = tuple(sorted({c.column for c in self.checks if c.column in usable}))
        masks = self._masks(table, usable)
        if not masks or table.num_rows == 0:
            return RowSchemaVerdict(0, table.num_rows, (), [], checked, skipped)
        failing = reduce(pc.or_, [m for _, m in masks])
        count = _count_true(failing)
        if count == 0:
            return RowSchemaVerdict(0, table.num_rows, (), [], checked, skipped)
        by_check = []
        for check, mask in masks:
            n = _count_true(mask)
            if n:
                by_check.append((check.column, check.keyword, n))
        samples = []
        feed_columns = [c for c in self.column_types if c in table.column_names]
        for index in first_indices(failing, MAX_SAMPLES):
            row = row_at(table, index, feed_columns)
            errors = [
                {"property": check.column, "keyword": check.keyword, "value": row.get(check.column)}
                for check, mask in masks
                if mask[index].as_py()
            ]
            samples.append({"row": index, "values": row, "errors": errors})
        return RowSchemaVerdict(count, table.num_rows, tuple(by_check), samples, checked, skipped)


_PER_VALUE_COSTLY = frozenset({"pattern", "format"})


def _single_value(column: pa.ChunkedArray) -> bool:
    """Whether ``column`` has at least one row, no null, and one distinct value."""
    if (
        len(column) == 0
        or column.null_count
        or not (pa.types.is_string(column.type) or pa.types.is_date32(column.type))
    ):
        return False
    bounds = pc.min_max(column)
    return bounds["min"] == bounds["max"]


def _broadcast(value: bool, length: int) -> pa.ChunkedArray:
    """A boolean column of ``length`` copies of ``value``."""
    return pa.chunked_array([pa.array(np.full(length, value, dtype=bool))], pa.bool_())


def _count_true(mask: pa.ChunkedArray) -> int:
    return int(pc.sum(mask).as_py() or 0)


# --------------------------------------------------------------------------- compilation


def compile_row_schema(feed: FeedConfig) -> CompiledRowSchema:
    """Compile ``feed.row_schema`` into vectorised checks.

    Raises :class:`RowSchemaError` (``INVALID_ARGUMENT``) if the schema is not a valid draft
    2020-12 schema, uses an unsupported keyword or format, names a property that is not a
    feed column, or could never be satisfied by a row of the feed (top-level ``type`` without
    ``object``, ``required`` naming a non-column, ``additionalProperties: false`` while a
    column has no property).
    """
    schema = feed.row_schema
    name = feed.name
    if not isinstance(schema, dict):
        raise RowSchemaError(name, f"must be a JSON object, got {type(schema).__name__}")
    declared = schema.get("$schema")
    if declared is not None and declared.rstrip("#") != DRAFT_2020_12:
        raise RowSchemaError(name, f"$schema {declared!r} is not draft 2020-12 ({DRAFT_2020_12})")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise RowSchemaError(name, f"is not a valid JSON Schema at {where}: {exc.message}") from None

    unknown = sorted(set(schema) - TOP_LEVEL_KEYWORDS)
    if unknown:
        raise RowSchemaError(
            name,
            f"uses unsupported top-level keyword(s) {', '.join(unknown)}; supported: "
            f"{', '.join(sorted(TOP_LEVEL_KEYWORDS))}",
        )
    if "type" in schema and "object" not in _as_list(schema["type"]):
        raise RowSchemaError(name, f"top-level type {schema['type']!r} never matches a row (a JSON object)")

    columns = {col.name: col for col in feed.columns}
    for col in feed.columns:
        if col.type not in KIND_OF_TYPE:
            raise RowSchemaError(name, f"cannot check column {col.name!r} of type {col.type!r}")
    not_columns = sorted(set(schema.get("required", ())) - set(columns))
    if not_columns:
        raise RowSchemaError(name, f"requires {', '.join(not_columns)}, which the feed does not have as columns")

    properties: dict[str, Any] = dict(schema.get("properties", {}))
    strays = sorted(set(properties) - set(columns))
    if strays:
        raise RowSchemaError(name, f"has properties for {', '.join(strays)}, which are not columns of the feed")
    additional = schema.get("additionalProperties", True)
    for col_name in columns:
        if col_name not in properties and additional is not True:
            if additional is False:
                raise RowSchemaError(
                    name,
                    f"forbids additional properties but has no property for column {col_name!r}: every row would fail",
                )
            properties[col_name] = additional

    checks: list[KeywordCheck] = []
    for col_name, col in columns.items():
        if col_name in properties:
            checks.extend(_compile_property(name, col, properties[col_name]))
    return CompiledRowSchema(
        feed_name=name,
        schema=schema,
        column_types={c.name: c.arrow_type for c in feed.columns},
        checks=tuple(checks),
    )


_COMPILED: dict[tuple[Any, ...], CompiledRowSchema] = {}
_COMPILED_MAX = 256


def row_schema_for(feed: FeedConfig) -> CompiledRowSchema:
    """:func:`compile_row_schema`, cached by the feed's name, columns and schema content.

    Compiling checks the schema against the draft 2020-12 metaschema (milliseconds), which
    is worth doing once per feed, not once per partition. Errors are not cached.
    """
    key = (
        feed.name,
        tuple((c.name, c.type) for c in feed.columns),
        json.dumps(feed.row_schema, sort_keys=True, default=repr),
    )
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = compile_row_schema(feed)
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()
        _COMPILED[key] = compiled
    return compiled


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _compile_property(feed: str, col: ColumnSpec, subschema: Any) -> list[KeywordCheck]:
    kind = KIND_OF_TYPE[col.type]
    where = f"property {col.name!r}"
    if subschema is True:
        return []
    if subschema is False:
        return [KeywordCheck(col.name, "false", False, all_rows)]
    if not isinstance(subschema, dict):
        raise RowSchemaError(feed, f"{where} must be a schema object or boolean")
    unknown = sorted(set(subschema) - set(PROPERTY_KEYWORDS) - ANNOTATION_KEYWORDS)
    if unknown:
        raise RowSchemaError(
            feed,
            f"{where} uses unsupported keyword(s) {', '.join(unknown)}; supported: "
            f"{', '.join(PROPERTY_KEYWORDS)} (format: {', '.join(SUPPORTED_FORMATS)})",
        )
    checks = []
    for keyword in PROPERTY_KEYWORDS:
        if keyword not in subschema:
            continue
        spec = subschema[keyword]
        fn = _compile_keyword(feed, where, kind, keyword, spec)
        if fn is not None:
            checks.append(KeywordCheck(col.name, keyword, spec, fn))
    return checks


def _compile_keyword(feed: str, where: str, kind: str, keyword: str, spec: Any) -> Violations | None:
    """The violation function of one keyword on a column of JSON kind ``kind`` (None: never fails)."""
    if keyword == "type":
        types = _as_list(spec)
        bad = sorted(set(types) - set(SCALAR_TYPES))
        if bad:
            raise RowSchemaError(
                feed,
                f"{where}: type {', '.join(bad)} never matches a column value (supported: {', '.join(SCALAR_TYPES)})",
            )
        return type_mask(kind, types)
    if keyword == "enum":
        return enum_mask(kind, list(spec))
    if keyword == "const":
        return enum_mask(kind, [spec])
    if keyword in BOUND_OPS:
        return bound_mask(kind, keyword, spec)
    if keyword in ("minLength", "maxLength"):
        return length_mask(kind, keyword, spec)
    if keyword == "pattern":
        try:
            check_pattern(spec)
        except ValueError as exc:
            raise RowSchemaError(feed, f"{where}: pattern {spec!r} is not a valid RE2 regex: {exc}") from None
        return pattern_mask(kind, spec)
    if keyword == "format":
        if spec not in SUPPORTED_FORMATS:
            raise RowSchemaError(
                feed, f"{where}: format {spec!r} is not supported (supported: {', '.join(SUPPORTED_FORMATS)})"
            )
        return date_format_mask(kind)
    raise AssertionError(keyword)  # pragma: no cover - PROPERTY_KEYWORDS is exhaustive
