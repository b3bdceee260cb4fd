"""JSON Schema checks for facet types: is a ``contentSchema`` a schema, does content satisfy it.

Schemas are draft 2020-12 (a ``$schema`` keyword may pick another draft jsonschema knows).
``format`` is asserted, not just annotated. jsonschema checks ``date``, ``email``, ``ipv4``,
``ipv6``, ``uuid``, ``regex``, ``idn-hostname`` with what is installed here; ``date-time`` and
``time`` would need ``rfc3339-validator``, so they are checked here with the standard library.
Formats that need other missing packages (``uri``, ``duration``, ``json-pointer`` ...) are
not asserted (JSON Schema treats an unknown format as an annotation).
"""

from __future__ import annotations

import re
from datetime import datetime, time
from functools import lru_cache
from typing import Any

from jsonschema import FormatChecker, validators
from jsonschema.exceptions import SchemaError

from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.facet_types.model import TYPE_MARKER, ValidationIssue

_DATE_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII)
_TIME_RE = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII)


def _format_checker() -> FormatChecker:
    checker = FormatChecker()
    if "date-time" not in checker.checkers:

        @checker.checks("date-time", raises=ValueError)
        def _is_date_time(instance: object) -> bool:
            if not isinstance(instance, str):
                return True
            return bool(_DATE_TIME_RE.match(instance)) and bool(
                datetime.fromisoformat(instance.upper().replace("Z", "+00:00"))
            )

    if "time" not in checker.checkers:

        @checker.checks("time", raises=ValueError)
        def _is_time(instance: object) -> bool:
            if not isinstance(instance, str):
                return True
            return bool(_TIME_RE.match(instance)) and bool(time.fromisoformat(instance.upper().replace("Z", "+00:00")))

    return checker


FORMAT_CHECKER = _format_checker()


def _validator_class(schema: Any):
    from jsonschema import Draft202012Validator

    return validators.validator_for(schema, default=Draft202012Validator)


def check_content_schema(schema: Any, *, type_key: str) -> None:
    """``INVALID_ARGUMENT`` unless ``schema`` is a valid JSON Schema (None = no validation)."""
    if schema is None:
        return
    if not isinstance(schema, (dict, bool)):
        raise invalid_argument(f"facet type {type_key!r}: contentSchema must be a JSON Schema object")
    try:
        _validator_class(schema).check_schema(schema)
    except SchemaError as exc:
        path = "$" + "".join(f"[{p!r}]" if not isinstance(p, int) else f"[{p}]" for p in exc.path)
        raise invalid_argument(
            f"facet type {type_key!r}: contentSchema is not a valid JSON Schema: {exc.message}",
            {"path": path, "reason": exc.message},
        ) from None


@lru_cache(maxsize=256)
def _compiled(schema_key: str):
    import json

    schema = json.loads(schema_key)
    return _validator_class(schema)(schema, format_checker=FORMAT_CHECKER)


def validate_against_schema(
    schema: dict[str, Any] | bool,
    content: dict[str, Any],
    *,
    type_key: str,
    entity_id: str | None = None,
    scope: str | None = None,
) -> list[ValidationIssue]:
    """Every way ``content`` breaks ``schema``, each with its JSON path (``$.status``).

    The ``_type`` marker is taken out first: it is the catalog's, not the content's.
    """
    import json

    validator = _compiled(json.dumps(schema, sort_keys=True))
    body = {k: v for k, v in content.items() if k != TYPE_MARKER}
    errors = sorted(validator.iter_errors(body), key=lambda e: (e.json_path, e.message))
    return [
        ValidationIssue(
            code="CONTENT_INVALID",
            message=error.message,
            type_key=type_key,
            entity_id=entity_id,
            scope=scope,
            path=_path_of(error),
        )
        for error in errors
    ]


def _path_of(error) -> str:
    """The JSON path of an error; a missing required property points at where it should be."""
    path = error.json_path
    if error.validator == "required" and isinstance(error.instance, dict):
        for name in error.validator_value or ():
            if name not in error.instance and repr(name) in error.message:
                return f"{path}.{name}" if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name) else f"{path}[{name!r}]"
    return path
