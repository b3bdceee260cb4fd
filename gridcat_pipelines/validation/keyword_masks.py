"""Violation masks of single JSON Schema keywords over one Arrow column (``pyarrow.compute``).

Each builder takes a keyword's value from the schema and the column's JSON *kind* (what a
non-null value of the column is in JSON: ``integer``, ``number``, ``string``, ``date``, a
string holding an ISO date, or ``boolean``) and returns a function from
:class:`ColumnValues` to a boolean column that is true exactly where ``jsonschema`` would
reject the value for that keyword (never null), or ``None`` when no value can fail it.
See :mod:`gridcat_pipelines.validation.json_schema` for the semantics kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SCALAR_TYPES = ("integer", "number", "string", "boolean", "null")

# The JSON kind of a column's non-null values, by the feed's Arrow type name and by Arrow type.
KIND_OF_TYPE = {"int64": "integer", "double": "number", "string": "string", "date32": "date", "bool": "boolean"}
KIND_OF_ARROW = {
    pa.int64(): "integer",
    pa.float64(): "number",
    pa.string(): "string",
    pa.date32(): "date",
    pa.bool_(): "boolean",
}

# Keyword -> the comparison that makes a value FAIL it (``instance < minimum`` fails minimum).
BOUND_OPS = {"minimum": "<", "maximum": ">", "exclusiveMinimum": "<=", "exclusiveMaximum": ">="}
_PC_OPS = {"<": pc.less, "<=": pc.less_equal, ">": pc.greater, ">=": pc.greater_equal}

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

# jsonschema's date check: ``re.fullmatch(r"^\d{4}-\d{2}-\d{2}$", s, re.ASCII)`` then
# ``date.fromisoformat``. RE2's ``$`` matches only at the end of the text, like fullmatch.
_DATE_SHAPE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int32)


class ColumnValues:
    """One column as the JSON values a row would hold, with derived arrays computed at most once."""

    def __init__(self, array: pa.ChunkedArray, kind: str):
        self.array = array
        self.kind = kind
        self._text: pa.ChunkedArray | None = None
        self._length: pa.ChunkedArray | None = None
        self._normalised: pa.ChunkedArray | None = None

    @property
    def text(self) -> pa.ChunkedArray:
        """String values as JSON strings (date32 as ISO dates)."""
        if self._text is None:
            self._text = self.array if self.kind == "string" else pc.cast(self.array, pa.string())
        return self._text

    @property
    def length(self) -> pa.ChunkedArray:
        """Length of each string in code points, as ``len()`` counts."""
        if self._length is None:
            self._length = pc.utf8_length(self.text)
        return self._length

    @property
    def normalised(self) -> pa.ChunkedArray:
        """Doubles with ``-0.0`` turned into ``0.0`` (hash lookups tell the two apart, ``==`` does not)."""
        if self._normalised is None:
            self._normalised = pc.add(self.array, 0.0)
        return self._normalised


Violations = Callable[[ColumnValues], pa.ChunkedArray]


def all_rows(v: ColumnValues) -> pa.ChunkedArray:
    """Every row fails (a ``false`` subschema; the key is present on every row)."""
    return pc.or_(pc.is_valid(v.array), pc.is_null(v.array))


def _non_null_rows(v: ColumnValues) -> pa.ChunkedArray:
    return pc.is_valid(v.array)


def _null_rows(v: ColumnValues) -> pa.ChunkedArray:
    return pc.is_null(v.array)


# --------------------------------------------------------------------------- type, enum, const


def type_mask(kind: str, types: list[str]) -> Violations | None:
    """``type``: null passes only if ``"null"`` is listed; a double is an ``integer`` when
    finite and integral; an int64 is also a ``number``; a date32 is a ``string``."""
    null_ok = "null" in types
    nonnull: str | Violations  # "none" | "all" | a mask function (nulls false)
    if kind == "integer":
        nonnull = "none" if {"integer", "number"} & set(types) else "all"
    elif kind == "number":
        if "number" in types:
            nonnull = "none"
        elif "integer" in types:
            nonnull = _non_integral
        else:
            nonnull = "all"
    elif kind in ("string", "date"):
        nonnull = "none" if "string" in types else "all"
    else:  # boolean
        nonnull = "none" if "boolean" in types else "all"

    if nonnull == "none":
        return None if null_ok else _null_rows
    if nonnull == "all":
        return _non_null_rows if null_ok else all_rows
    fn = nonnull
    return fn if null_ok else (lambda v: pc.or_(fn(v), pc.is_null(v.array)))


def _non_integral(v: ColumnValues) -> pa.ChunkedArray:
    """Doubles jsonschema does not count as integers (``float.is_integer()`` false); nulls false."""
    x = v.array
    integral = pc.and_(pc.is_finite(x), pc.equal(pc.floor(x), x))
    return pc.fill_null(pc.invert(integral), False)


def enum_mask(kind: str, members: list[Any]) -> Violations:
    """``enum`` (and ``const`` as a one-member enum), with jsonschema's ``equal``: numbers by
    value, never a boolean equal to a number, null only if a member is null."""
    null_ok = any(m is None for m in members)
    value_set = _enum_value_set(kind, members)
    if len(value_set) == 0:
        return _non_null_rows if null_ok else all_rows

    def violations(v: ColumnValues) -> pa.ChunkedArray:
        """Rows whose value is not a member (a null is not in the set: it fails unless allowed)."""
        values = v.normalised if kind == "number" else v.text if kind == "date" else v.array
        missing = pc.invert(pc.is_in(values, value_set=value_set))
        return pc.and_(missing, pc.is_valid(v.array)) if null_ok else missing

    return violations


def _enum_value_set(kind: str, members: list[Any]) -> pa.Array:
    """The members a value of ``kind`` can equal under jsonschema's ``equal``."""
    found: list[Any] = []
    for m in members:
        if m is None or isinstance(m, (list, dict)):
            continue
        if kind == "integer":
            if isinstance(m, bool) or not isinstance(m, (int, float)):
                continue
            if isinstance(m, float):
                if not (math.isfinite(m) and m.is_integer()):
                    continue
                m = int(m)
            if _INT64_MIN <= m <= _INT64_MAX:
                found.append(m)
        elif kind == "number":
            if isinstance(m, bool) or not isinstance(m, (int, float)):
                continue
            try:
                f = float(m)
            except OverflowError:
                continue
            if f == m and not math.isnan(f):  # exact: an int beyond 2**53 may equal no double
                found.append(f + 0.0)
        elif kind in ("string", "date"):
            if isinstance(m, str):
                found.append(m)
        elif kind == "boolean":
            if isinstance(m, bool):
                found.append(m)
    arrow_type = {"integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}.get(kind, pa.string())
    return pa.array(sorted(set(found), key=repr), arrow_type)


# --------------------------------------------------------------------------- numeric bounds


def bound_mask(kind: str, keyword: str, bound: Any) -> Violations | None:
    """``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum``, compared exactly as
    Python compares an int or float value with an int or float bound; non-numbers pass."""
    if kind not in ("integer", "number"):
        return None
    op = BOUND_OPS[keyword]
    return _int_bound(op, bound) if kind == "integer" else _double_bound(op, bound)


def _constant(result: bool) -> Violations | None:
    return _non_null_rows if result else None


def _int_bound(op: str, bound: Any) -> Violations | None:
    if isinstance(bound, float):
        if math.isnan(bound):
            return None  # every comparison with NaN is false
        if math.isinf(bound):
            above = bound > 0  # the bound is above every integer
            return _constant(op in ("<", "<=") if above else op in (">", ">="))
        # For an integer x: x < b <=> x < ceil(b); x >= b <=> x >= ceil(b);
        # x > b <=> x > floor(b); x <= b <=> x <= floor(b).
        bound = math.ceil(bound) if op in ("<", ">=") else math.floor(bound)
    if bound > _INT64_MAX:
        return _constant(op in ("<", "<="))
    if bound < _INT64_MIN:
        return _constant(op in (">", ">="))
    scalar = pa.scalar(int(bound), pa.int64())
    compare = _PC_OPS[op]
    return lambda v: pc.fill_null(compare(v.array, scalar), False)


def _double_bound(op: str, bound: Any) -> Violations | None:
    if isinstance(bound, float):
        fbound, op_used = bound, op
    else:
        try:
            fbound = float(bound)
        except OverflowError:
            fbound = math.inf if bound > 0 else -math.inf
        if fbound == bound:
            op_used = op
        else:
            # ``bound`` lies strictly between two adjacent doubles and ``fbound`` is one of
            # them: no double equals ``bound``, so decide against the neighbour exactly.
            rounded_up = fbound > bound
            if op in ("<", "<="):
                op_used = "<" if rounded_up else "<="
            else:
                op_used = ">=" if rounded_up else ">"
    scalar = pa.scalar(fbound, pa.float64())
    compare = _PC_OPS[op_used]
    return lambda v: pc.fill_null(compare(v.array, scalar), False)


# --------------------------------------------------------------------------- strings


def length_mask(kind: str, keyword: str, limit: int) -> Violations | None:
    """``minLength``/``maxLength`` in code points; non-strings pass."""
    if kind not in ("string", "date"):
        return None
    limit = int(limit)
    if keyword == "minLength":
        return lambda v: pc.fill_null(pc.less(v.length, limit), False)
    return lambda v: pc.fill_null(pc.greater(v.length, limit), False)


def check_pattern(pattern: str) -> None:
    """Raise ``ValueError`` if ``pattern`` is not a regex RE2 accepts."""
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValueError(str(exc)) from None


def pattern_mask(kind: str, pattern: str) -> Violations | None:
    """``pattern``: an unanchored RE2 search (see the dialect notes in ``json_schema``); non-strings pass."""
    if kind not in ("string", "date"):
        return None
    return lambda v: pc.invert(pc.fill_null(pc.match_substring_regex(v.text, pattern), True))


def date_format_mask(kind: str) -> Violations | None:
    """``format: date`` as jsonschema's FormatChecker: ``YYYY-MM-DD`` and a real calendar date.

    date32 values are valid dates; non-strings pass.
    """
    if kind != "string":
        return None
    return lambda v: _not_iso_date(v.text)


def _not_iso_date(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """True for strings that jsonschema's ``date`` format rejects (nulls false)."""
    shaped = pc.fill_null(pc.match_substring_regex(text, _DATE_SHAPE), False)
    if not pc.any(shaped).as_py():
        return pc.is_valid(text)
    safe = pc.if_else(shaped, text, "2000-01-01")
    year = _to_numpy(pc.cast(pc.utf8_slice_codeunits(safe, 0, 4), pa.int32()))
    month = _to_numpy(pc.cast(pc.utf8_slice_codeunits(safe, 5, 7), pa.int32()))
    day = _to_numpy(pc.cast(pc.utf8_slice_codeunits(safe, 8, 10), pa.int32()))
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    days = _DAYS_IN_MONTH[np.where(month_ok, month, 0)] + ((month == 2) & leap)
    valid_date = month_ok & (year >= 1) & (day >= 1) & (day <= days)
    bad = pa.array(~(_to_numpy(shaped) & valid_date))
    return pc.and_(pc.is_valid(text), pa.chunked_array([bad]) if isinstance(text, pa.ChunkedArray) else bad)


def _to_numpy(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if isinstance(values, pa.ChunkedArray):
        return np.asarray(values.to_numpy())
    return np.asarray(values.to_numpy(zero_copy_only=False))
