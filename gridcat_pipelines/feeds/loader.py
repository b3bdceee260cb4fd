"""Load ``config/google_apis.yaml`` and ``config/customers.yaml`` into typed config objects.

Everything is checked at load time; a bad file raises :class:`ConfigError` (code
``INVALID_ARGUMENT``) whose message names the file, the path inside it
(``feeds[2].columns[4].type``) and the reason, e.g.::

    config/google_apis.yaml: feeds[2].columns[4].type: unknown Arrow type 'int32' (expected ...)
"""

from __future__ import annotations

import copy
import re
from datetime import date
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from gridcat_pipelines.errors import INVALID_ARGUMENT, GridcatError
from gridcat_pipelines.feeds.models import (
    ARROW_TYPES,
    ColumnSpec,
    CustomerConfig,
    FeedConfig,
    FeedRules,
    PipelineConfig,
    column_name,
)
from gridcat_pipelines.state.keys import normalize_customer_id, parse_tags
from gridcat_pipelines.validation.registry import COLUMN, COLUMNS
from gridcat_pipelines.validation.registry import active as active_rules

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
DEFAULT_FEEDS_PATH = CONFIG_DIR / "google_apis.yaml"
DEFAULT_CUSTOMERS_PATH = CONFIG_DIR / "customers.yaml"

# JSON-Schema keywords the row_schema compiler supports.
ROW_SCHEMA_TOP_KEYWORDS = frozenset({"type", "properties", "additionalProperties"})
ROW_SCHEMA_PROPERTY_KEYWORDS = frozenset(
    {
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
    }
)
ROW_SCHEMA_FORMATS = frozenset({"date"})
_JSON_TYPES = frozenset({"integer", "number", "string", "boolean", "null"})
# JSON types a row_schema property may give each Arrow column type (besides "null").
_COMPATIBLE_JSON_TYPES = {
    "int64": {"integer", "number"},
    "double": {"number"},
    "string": {"string"},
    "date32": {"string"},
    "bool": {"boolean"},
}

_FEED_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_RESOURCE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_FIELD_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_CUSTOMER_ID_RE = re.compile(r"^[0-9]{10}$")
_GAQL_RE = re.compile(
    r"^\s*SELECT\s+(?P<select>.+?)\s+FROM\s+(?P<resource>\S+)(?:\s+(?P<rest>.*))?$",
    re.IGNORECASE | re.DOTALL,
)
DATE_PLACEHOLDER = "'{date}'"
# yaml.safe_load's loader, in its libyaml (C) build when available: same safe semantics,
# about 8x faster on the feed config.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_FEED_KEYS = {"name", "resource", "gaql", "columns", "primary_key", "schema_version", "row_schema"}
_FEED_OPTIONAL_KEYS = {"description", "rules"}
_COLUMN_KEYS = {"field", "type"}
_COLUMN_OPTIONAL_KEYS = {"nullable", "description"}
_CUSTOMER_KEYS = {"customer_id", "name", "time_zone", "currency"}
_CUSTOMER_OPTIONAL_KEYS = {"tags"}
_PIPELINE_KEYS = {"start_date"}
_PIPELINE_OPTIONAL_KEYS = {"lookback_days", "settle_hours", "shard_above", "shards", "customer_days_per_run"}
MAX_SHARDS = 1000
MAX_SETTLE_HOURS = 48


class ConfigError(GridcatError):
    """A config file that cannot be loaded: which file, where in it, and why."""

    def __init__(self, file: str | Path, path: str, reason: str):
        self.file = str(file)
        self.path = path
        self.reason = reason
        where = f"{self.file}: {path}" if path else self.file
        super().__init__(
            INVALID_ARGUMENT,
            f"{where}: {reason}",
            [{"file": self.file, "path": path, "reason": reason}],
        )


# --------------------------------------------------------------------------- public API


def load_pipeline_config(
    feeds_path: str | Path = DEFAULT_FEEDS_PATH,
    customers_path: str | Path = DEFAULT_CUSTOMERS_PATH,
    *,
    synthetic_source: bool = True,
) -> PipelineConfig:
    """Load and check the feed config (with its ``pipeline:`` section) and the customers.

    With ``synthetic_source`` (the pipeline pulls from the synthetic source: the default, the
    demo and the tests) every feed must be one it can generate; a deployment pulling from
    Google Ads (``GRIDCAT_SOURCE=google_ads``) loads feeds the synthetic source cannot make."""
    doc = _read_yaml(feeds_path, top_keys={"feeds"}, optional_top_keys={"pipeline"})
    ctx = _Ctx(feeds_path)
    feeds = _parse_feeds(ctx, doc["feeds"])
    _check_row_schemas_compile(ctx, feeds)
    if synthetic_source:
        _check_synthetic_source_generates(ctx, feeds)
    if "pipeline" not in doc:
        ctx.fail(
            "pipeline",
            "missing required key (start_date; optional: lookback_days, settle_hours, shard_above, shards, "
            "customer_days_per_run)",
        )
    settings = _parse_pipeline(ctx, doc["pipeline"])
    customers = load_customers(customers_path)
    return PipelineConfig(feeds=feeds, customers=customers, **settings)


def _check_row_schemas_compile(ctx: _Ctx, feeds: dict[str, FeedConfig]) -> None:
    """Compile every row schema now, so what the vectorised validator cannot run fails at load."""
    from gridcat_pipelines.validation.json_schema import (
        row_schema_for,  # validation imports feeds
    )

    for i, feed in enumerate(feeds.values()):
        try:
            row_schema_for(feed)
        except GridcatError as exc:
            ctx.fail(f"feeds[{i}].row_schema", exc.message)


def _check_synthetic_source_generates(ctx: _Ctx, feeds: dict[str, FeedConfig]) -> None:
    """Every feed must be one the synthetic source (dev, tests, demo) can generate valid rows of,
    so a new feed fails here, naming where its generator goes, rather than at its first pull."""
    from gridcat_pipelines.sources.synthetic import (
        generation_gap,  # sources import feeds
    )

    for i, feed in enumerate(feeds.values()):
        gap = generation_gap(feed)
        if gap is not None:
            where, reason = gap
            ctx.fail(f"feeds[{i}].{where}", reason)


def load_feeds(path: str | Path = DEFAULT_FEEDS_PATH) -> dict[str, FeedConfig]:
    """The feeds of a feed config file, keyed by query name, in file order."""
    doc = _read_yaml(path, top_keys={"feeds"}, optional_top_keys={"pipeline"})
    return _parse_feeds(_Ctx(path), doc["feeds"])


def load_customers(path: str | Path = DEFAULT_CUSTOMERS_PATH) -> dict[str, CustomerConfig]:
    """The customers of a customers file, keyed by digits-only customer id, in file order."""
    doc = _read_yaml(path, top_keys={"customers"}, optional_top_keys=set())
    ctx = _Ctx(path)
    items = doc["customers"]
    if not isinstance(items, list) or not items:
        ctx.fail("customers", "must be a non-empty list of customers")
    customers: dict[str, CustomerConfig] = {}
    for i, raw in enumerate(items):
        customer = _parse_customer(ctx, raw, f"customers[{i}]")
        if customer.customer_id in customers:
            ctx.fail(f"customers[{i}].customer_id", f"duplicate customer id {customer.customer_id}")
        customers[customer.customer_id] = customer
    return customers


# --------------------------------------------------------------------------- reading


class _Ctx:
    """The file being checked; ``fail`` raises a ConfigError naming it."""

    def __init__(self, file: str | Path):
        self.file = str(file)

    def fail(self, path: str, reason: str) -> NoReturn:
        """Raise a ConfigError for ``path`` in this file."""
        raise ConfigError(self.file, path, reason)


def _read_yaml(path: str | Path, top_keys: set[str], optional_top_keys: set[str]) -> dict:
    ctx = _Ctx(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        ctx.fail("", "file not found")
    except OSError as exc:
        ctx.fail("", f"cannot read file: {exc.strerror or exc}")
    try:
        doc = yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        ctx.fail(where, f"YAML syntax error: {problem}")
    if not isinstance(doc, dict):
        ctx.fail("", f"must be a YAML mapping with key(s) {', '.join(sorted(top_keys))}")
    _check_keys(ctx, doc, "", top_keys, optional_top_keys)
    return doc


def _check_keys(ctx: _Ctx, raw: Any, path: str, required: set[str], optional: set[str]) -> dict:
    if not isinstance(raw, dict):
        ctx.fail(path, f"must be a mapping, got {type(raw).__name__}")
    for key in raw:
        if key not in required and key not in optional:
            allowed = ", ".join(sorted(required | optional))
            ctx.fail(_join(path, str(key)), f"unknown key (allowed: {allowed})")
    for key in sorted(required):
        if key not in raw:
            ctx.fail(_join(path, key), "missing required key")
    return raw


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _string(ctx: _Ctx, value: Any, path: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        ctx.fail(path, f"must be a non-empty string, got {value!r}")
    return value


def _string_list(ctx: _Ctx, value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        ctx.fail(path, f"must be a list of column names, got {value!r}")
    for i, item in enumerate(value):
        if item in value[:i]:
            ctx.fail(f"{path}[{i}]", f"duplicate column {item!r}")
    return tuple(value)


# --------------------------------------------------------------------------- feeds


def _parse_feeds(ctx: _Ctx, items: Any) -> dict[str, FeedConfig]:
    if not isinstance(items, list) or not items:
        ctx.fail("feeds", "must be a non-empty list of feeds")
    feeds: dict[str, FeedConfig] = {}
    for i, raw in enumerate(items):
        feed = _parse_feed(ctx, raw, f"feeds[{i}]")
        if feed.name in feeds:
            ctx.fail(f"feeds[{i}].name", f"duplicate feed {feed.name!r}")
        feeds[feed.name] = feed
    return feeds


def _parse_feed(ctx: _Ctx, raw: Any, path: str) -> FeedConfig:
    _check_keys(ctx, raw, path, _FEED_KEYS, _FEED_OPTIONAL_KEYS)
    name = raw["name"]
    if not isinstance(name, str) or not _FEED_NAME_RE.match(name):
        ctx.fail(f"{path}.name", f"feed name {name!r} must match {_FEED_NAME_RE.pattern}")
    resource = raw["resource"]
    if not isinstance(resource, str) or not _RESOURCE_RE.match(resource):
        ctx.fail(f"{path}.resource", f"resource {resource!r} must be a GAQL resource name")
    columns = _parse_columns(ctx, raw["columns"], f"{path}.columns")
    names = {c.name: c for c in columns}
    gaql = _parse_gaql(ctx, raw["gaql"], f"{path}.gaql", resource, columns)
    primary_key = _string_list(ctx, raw["primary_key"], f"{path}.primary_key")
    if not primary_key:
        ctx.fail(f"{path}.primary_key", "must name at least one column")
    for i, col in enumerate(primary_key):
        if col not in names:
            ctx.fail(f"{path}.primary_key[{i}]", f"no column {col!r} in this feed")
        if names[col].nullable:
            ctx.fail(f"{path}.primary_key[{i}]", f"key column {col!r} must be nullable: false")
    version = raw["schema_version"]
    if isinstance(version, bool) or not isinstance(version, (str, int)) or not str(version).strip():
        ctx.fail(f"{path}.schema_version", f"must be a non-empty string, got {version!r}")
    rules = _parse_rules(ctx, raw.get("rules", {}), f"{path}.rules", names)
    row_schema = _parse_row_schema(ctx, raw["row_schema"], f"{path}.row_schema", names)
    description = raw.get("description", "")
    _string(ctx, description, f"{path}.description", allow_empty=True)
    feed = FeedConfig(
        name=name,
        resource=resource,
        gaql=gaql,
        columns=columns,
        primary_key=primary_key,
        schema_version=str(version),
        row_schema=row_schema,
        rules=rules,
        description=description.strip(),
    )
    _check_owned_keywords(ctx, feed, path)
    return feed


def _parse_columns(ctx: _Ctx, items: Any, path: str) -> tuple[ColumnSpec, ...]:
    if not isinstance(items, list) or not items:
        ctx.fail(path, "must be a non-empty list of columns")
    columns: list[ColumnSpec] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(items):
        cpath = f"{path}[{i}]"
        _check_keys(ctx, raw, cpath, _COLUMN_KEYS, _COLUMN_OPTIONAL_KEYS)
        gaql_field = raw["field"]
        if not isinstance(gaql_field, str) or not _FIELD_RE.match(gaql_field):
            ctx.fail(f"{cpath}.field", f"{gaql_field!r} is not a GAQL field like metrics.clicks")
        type_name = raw["type"]
        if type_name not in ARROW_TYPES:
            ctx.fail(
                f"{cpath}.type",
                f"unknown Arrow type {type_name!r} (expected one of {', '.join(ARROW_TYPES)})",
            )
        nullable = raw.get("nullable", True)
        if not isinstance(nullable, bool):
            ctx.fail(f"{cpath}.nullable", f"must be true or false, got {nullable!r}")
        description = raw.get("description", "")
        _string(ctx, description, f"{cpath}.description", allow_empty=True)
        name = column_name(gaql_field)
        if name in seen:
            ctx.fail(f"{cpath}.field", f"duplicate column {name!r} (also columns[{seen[name]}])")
        seen[name] = i
        columns.append(ColumnSpec(gaql_field, type_name, nullable, description))
    return tuple(columns)


def _parse_gaql(ctx: _Ctx, gaql: Any, path: str, resource: str, columns: tuple[ColumnSpec, ...]) -> str:
    gaql = _string(ctx, gaql, path).strip()
    match = _GAQL_RE.match(gaql)
    if not match:
        ctx.fail(path, "must read SELECT <fields> FROM <resource> WHERE segments.date = '{date}'")
    selected = [f.strip() for f in match["select"].split(",")]
    expected = [c.field for c in columns]
    if selected != expected:
        missing = [f for f in expected if f not in selected]
        extra = [f for f in selected if f not in expected]
        if missing:
            detail = f"missing {missing}"
        else:
            detail = f"not columns: {extra}" if extra else "order differs"
        ctx.fail(path, f"SELECT list must be exactly the columns' fields in order ({detail})")
    if match["resource"] != resource:
        ctx.fail(path, f"FROM {match['resource']} does not match resource {resource!r}")
    if DATE_PLACEHOLDER not in (match["rest"] or ""):
        ctx.fail(path, f"WHERE clause must compare segments.date to {DATE_PLACEHOLDER}")
    return gaql


def _parse_rules(ctx: _Ctx, raw: Any, path: str, names: dict[str, ColumnSpec]) -> FeedRules:
    """The feed's ``rules:`` keys: one per rule option of the rule registry."""
    options = active_rules().options
    _check_keys(ctx, raw, path, set(), set(options))

    def column(value: Any, cpath: str, types: tuple[str, ...]) -> str:
        """``value`` if it names a column of one of ``types``, else fail."""
        if not isinstance(value, str) or value not in names:
            ctx.fail(cpath, f"no column {value!r} in this feed")
        if names[value].type not in types:
            ctx.fail(cpath, f"column {value!r} is {names[value].type}, not {' or '.join(types)}")
        return value

    settings: dict[str, Any] = {}
    for key, option in options.items():
        opath = f"{path}.{key}"
        types = option.types or tuple(ARROW_TYPES)
        if option.kind == COLUMNS:
            listed = _string_list(ctx, raw.get(key, []), opath)
            for i, col in enumerate(listed):
                column(col, f"{opath}[{i}]", types)
            settings[key] = listed
        elif option.kind == COLUMN:
            value = raw.get(key, option.default)
            settings[key] = None if value is None and option.default is None else column(value, opath, types)
        else:  # FLAG
            value = raw.get(key, False)
            if not isinstance(value, bool):
                ctx.fail(opath, f"must be true or false, got {value!r}")
            if value:
                for needed in option.needs:
                    if needed not in names:
                        ctx.fail(opath, f"needs a column {needed!r}")
            settings[key] = value
    return FeedRules(**settings)


def _check_owned_keywords(ctx: _Ctx, feed: FeedConfig, path: str) -> None:
    """A row_schema keyword a rule owns (``minimum`` for cost_non_negative) must not be set on
    the columns that rule checks: one defect must fail exactly one rule."""
    properties = feed.row_schema.get("properties", {})
    for rule in active_rules().for_feed(feed):
        for col in rule.columns_of(feed):
            prop = properties.get(col)
            for keyword in rule.owns_keywords:
                if isinstance(prop, dict) and keyword in prop:
                    setting = f" (rules.{rule.option.key})" if rule.option is not None else ""
                    ctx.fail(
                        f"{path}.row_schema.properties.{col}.{keyword}",
                        f"must not be set on a column rule {rule.name} checks{setting}: that rule owns "
                        f"{keyword}, and a defect must fail exactly one rule",
                    )


def _parse_row_schema(ctx: _Ctx, raw: Any, path: str, names: dict[str, ColumnSpec]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        ctx.fail(path, "must be a JSON Schema object")
    try:
        Draft202012Validator.check_schema(raw)
    except SchemaError as exc:
        where = _join(path, ".".join(str(p) for p in exc.absolute_path))
        ctx.fail(where, f"not a valid JSON Schema (draft 2020-12): {exc.message}")
    for key in raw:
        if key not in ROW_SCHEMA_TOP_KEYWORDS:
            allowed = ", ".join(sorted(ROW_SCHEMA_TOP_KEYWORDS))
            ctx.fail(f"{path}.{key}", f"unsupported keyword at top level (allowed: {allowed})")
    if raw.get("type") != "object":
        ctx.fail(f"{path}.type", "must be 'object'")
    if not isinstance(raw.get("additionalProperties", True), bool):
        ctx.fail(f"{path}.additionalProperties", "must be true or false")
    properties = raw.get("properties", {})
    for col, prop in properties.items():
        ppath = f"{path}.properties.{col}"
        if col not in names:
            ctx.fail(ppath, f"no column {col!r} in this feed")
        if not isinstance(prop, dict):
            ctx.fail(ppath, "must be a mapping of supported keywords")
        _check_property(ctx, prop, ppath, names[col])
    return copy.deepcopy(raw)


def _check_property(ctx: _Ctx, prop: dict, path: str, spec: ColumnSpec) -> None:
    for key in prop:
        if key not in ROW_SCHEMA_PROPERTY_KEYWORDS:
            allowed = ", ".join(sorted(ROW_SCHEMA_PROPERTY_KEYWORDS))
            ctx.fail(f"{path}.{key}", f"unsupported keyword (allowed: {allowed})")
    types = prop.get("type")
    if types is not None:
        listed = set(types) if isinstance(types, list) else {types}
        if not listed <= _JSON_TYPES:
            ctx.fail(f"{path}.type", f"unsupported type(s) {sorted(listed - _JSON_TYPES)}")
        if not (listed - {"null"}) & _COMPATIBLE_JSON_TYPES[spec.type]:
            ctx.fail(
                f"{path}.type",
                f"{sorted(listed)} cannot hold column type {spec.type} "
                f"(use {' or '.join(sorted(_COMPATIBLE_JSON_TYPES[spec.type]))})",
            )
    if "format" in prop and prop["format"] not in ROW_SCHEMA_FORMATS:
        ctx.fail(f"{path}.format", f"unsupported format {prop['format']!r} (only 'date')")
    if "pattern" in prop:
        try:
            re.compile(prop["pattern"])
        except re.error as exc:
            ctx.fail(f"{path}.pattern", f"not a valid regular expression: {exc}")


# --------------------------------------------------------------------------- pipeline, customers


def _parse_pipeline(ctx: _Ctx, raw: Any) -> dict[str, Any]:
    """The ``pipeline:`` section as PipelineConfig keyword arguments (besides feeds and customers)."""
    _check_keys(ctx, raw, "pipeline", _PIPELINE_KEYS, _PIPELINE_OPTIONAL_KEYS)
    start = raw["start_date"]
    if isinstance(start, str):
        try:
            start = date.fromisoformat(start) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", start) else None
        except ValueError:
            start = None
    if not isinstance(start, date):
        ctx.fail("pipeline.start_date", f"must be a YYYY-MM-DD date, got {raw['start_date']!r}")
    lookback = raw.get("lookback_days", 3)
    if isinstance(lookback, bool) or not isinstance(lookback, int) or not 0 <= lookback <= 366:
        ctx.fail("pipeline.lookback_days", f"must be an integer from 0 to 366, got {lookback!r}")
    settle = raw.get("settle_hours", 3)
    if isinstance(settle, bool) or not isinstance(settle, (int, float)) or not 0 <= settle <= MAX_SETTLE_HOURS:
        ctx.fail("pipeline.settle_hours", f"must be a number of hours from 0 to {MAX_SETTLE_HOURS}, got {settle!r}")
    sizes = {
        "shard_above": (raw.get("shard_above", 100), 0, 10_000_000),
        "shards": (raw.get("shards", 16), 1, MAX_SHARDS),
        "customer_days_per_run": (raw.get("customer_days_per_run", 400), 1, 100_000),
    }
    for name, (value, low, high) in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            ctx.fail(f"pipeline.{name}", f"must be an integer from {low} to {high}, got {value!r}")
    return {
        "start_date": start,
        "lookback_days": lookback,
        "settle_hours": float(settle),
        **{name: value for name, (value, _, _) in sizes.items()},
    }


def _parse_customer(ctx: _Ctx, raw: Any, path: str) -> CustomerConfig:
    _check_keys(ctx, raw, path, _CUSTOMER_KEYS, _CUSTOMER_OPTIONAL_KEYS)
    value = raw["customer_id"]
    try:
        if isinstance(value, bool):
            raise GridcatError(INVALID_ARGUMENT, "a boolean is not a customer id")
        customer_id = normalize_customer_id(value)
    except GridcatError:
        customer_id = ""
    if not _CUSTOMER_ID_RE.match(customer_id):
        ctx.fail(
            f"{path}.customer_id",
            f"{value!r} is not a 10-digit customer id (1234567890 or 123-456-7890)",
        )
    name = _string(ctx, raw["name"], f"{path}.name").strip()
    time_zone = raw["time_zone"]
    try:
        if not isinstance(time_zone, str):
            raise ValueError
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        ctx.fail(f"{path}.time_zone", f"{time_zone!r} is not an IANA time zone")
    currency = raw["currency"]
    if not isinstance(currency, str) or not _CURRENCY_RE.match(currency):
        ctx.fail(f"{path}.currency", f"{currency!r} is not an ISO 4217 code (e.g. USD)")
    try:
        tags = parse_tags(raw.get("tags", {}))
    except GridcatError as exc:
        ctx.fail(f"{path}.tags", exc.message)
    return CustomerConfig(customer_id, name, time_zone, currency, tags)
