"""Turning request bytes into a checked message: JSON, text hygiene, field names, schema.

Every failure is ``invalid_argument`` with a message that names the field; nothing here
raises anything else, so a malformed request can never become a 500.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator

from gridcat_pipelines.errors import invalid_argument

MAX_DEPTH = 32
_CAMEL_RE = re.compile(r"(?<!^)([A-Z])")


def parse_json(body: bytes) -> Any:
    """The JSON document in ``body`` (an empty body is ``{}``, as Connect treats it)."""
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_argument("request body is not UTF-8") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise invalid_argument("request body is nested too deeply") from None
    except ValueError as exc:
        raise invalid_argument(f"request body is not valid JSON: {exc}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check_text(value: Any, where: str = "$", depth: int = 0) -> None:
    """Reject NUL characters, lone surrogates and documents nested deeper than 32 levels."""
    if depth > MAX_DEPTH:
        raise invalid_argument(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        check_string(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_string(key, f"{where} (a key)")
            check_text(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_text(item, f"{where}[{i}]", depth + 1)


def check_string(value: str, where: str) -> str:
    """``value`` when it is storable text (no NUL, valid UTF-8), ``invalid_argument`` otherwise."""
    if "\x00" in value:
        raise invalid_argument(f"{where}: text may not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid_argument(f"{where}: text is not valid Unicode (lone surrogate)") from None
    return value


def snake_case(name: str) -> str:
    """``pageSize`` → ``page_size``."""
    return _CAMEL_RE.sub(r"_\1", name).lower()


def camel_case(name: str) -> str:
    """``page_size`` → ``pageSize``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def canonical_names(value: Any, schema: dict[str, Any], where: str = "$") -> Any:
    """``value`` with each field renamed to the schema's spelling: ``page_size`` and
    ``pageSize`` both name the property ``page_size``, as protobuf JSON parsers accept either.
    Maps (``additionalProperties`` schemas such as ``tags``) keep their keys as given."""
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [canonical_names(v, schema["items"], f"{where}[{i}]") for i, v in enumerate(value)]
    properties = schema.get("properties")
    if not isinstance(value, dict) or not properties:
        return _in_nullable(value, schema, where)
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = (
            key
            if key in properties
            else next((alias for alias in (snake_case(key), camel_case(key)) if alias in properties), key)
        )
        if name in out:
            raise invalid_argument(f"{where}: field {name!r} given twice ({key!r})")
        child = properties.get(name)
        out[name] = canonical_names(item, child, f"{where}.{name}") if isinstance(child, dict) else item
    return out


def _in_nullable(value: Any, schema: dict[str, Any], where: str) -> Any:
    for option in schema.get("anyOf", ()):
        if isinstance(option, dict) and option.get("properties"):
            return canonical_names(value, option, where)
    return value


_VALIDATORS: dict[int, tuple[dict[str, Any], Draft202012Validator]] = {}


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = (schema, Draft202012Validator(schema))
        _VALIDATORS[id(schema)] = cached
    return cached[1]


_ANNOTATIONS = frozenset({"description", "default", "examples", "format", "title"})
_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "boolean": (bool,), "object": (dict,), "null": (type(None),)}


def _plainly_valid(value: Any, schema: dict[str, Any]) -> bool:
    """A fast, conservative check for the flat request messages: ``True`` only when ``value``
    certainly satisfies ``schema``; ``False`` means "ask the full validator" (which also finds
    the error message). Keywords it does not know always defer."""
    for keyword, rule in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        if keyword == "type":
            types = rule if isinstance(rule, list) else [rule]
            if not any(_is_type(value, t) for t in types):
                return False
        elif keyword == "pattern":
            if isinstance(value, str) and _pattern(rule).search(value) is None:
                return False
        elif keyword == "maxLength":
            if isinstance(value, str) and len(value) > rule:
                return False
        elif keyword == "enum":
            if not any(value == e and type(value) is type(e) for e in rule):
                return False
        elif keyword in ("minimum", "maximum"):
            if isinstance(value, int) and not isinstance(value, bool):
                if value < rule if keyword == "minimum" else value > rule:
                    return False
        elif keyword == "required":
            if isinstance(value, dict) and any(name not in value for name in rule):
                return False
        elif keyword == "additionalProperties" and rule is False:
            if isinstance(value, dict) and any(name not in schema.get("properties", {}) for name in value):
                return False
        elif keyword == "properties":
            if isinstance(value, dict) and not all(
                _plainly_valid(item, rule[name]) for name, item in value.items() if name in rule
            ):
                return False
        else:
            return False
    return True


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, _TYPES.get(name, ()))


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _pattern(text: str) -> re.Pattern[str]:
    compiled = _PATTERNS.get(text)
    if compiled is None:
        compiled = _PATTERNS[text] = re.compile(text)
    return compiled


def validate(value: Any, schema: dict[str, Any]) -> None:
    """``invalid_argument`` naming the first offending field when ``value`` breaks ``schema``."""
    if _plainly_valid(value, schema):
        return
    validator = _validator(schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: (list(e.path), e.message))
    if not errors:
        return
    first = errors[0]
    path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first.path)
    message = first.message if len(first.message) <= 300 else first.message[:300] + "…"
    if first.validator == "additionalProperties":
        message = f"unknown field(s): {message}"
    raise invalid_argument(f"{path}: {message}", {"field": path, "rule": first.validator})


def read_message(body: bytes, schema: dict[str, Any]) -> dict[str, Any]:
    """The request body as a checked message with canonical field names."""
    value = parse_json(body)
    if not isinstance(value, dict):
        raise invalid_argument("request body must be a JSON object")
    check_text(value)
    value = canonical_names(value, schema)
    validate(value, schema)
    return value
