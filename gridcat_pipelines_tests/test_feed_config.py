"""The shipped feed/customer config loads and is consistent; bad config fails at load time
with the file, the path inside it and the reason."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from gridcat_pipelines.errors import INVALID_ARGUMENT, GridcatError
from gridcat_pipelines.feeds import loader
from gridcat_pipelines.feeds.loader import (
    ConfigError,
    load_customers,
    load_feeds,
    load_pipeline_config,
)
from gridcat_pipelines.feeds.models import ARROW_TYPES

SHIPPED_FEEDS = loader.DEFAULT_FEEDS_PATH
SHIPPED_CUSTOMERS = loader.DEFAULT_CUSTOMERS_PATH
ENUM_COLUMNS = {  # a few enum columns the brief names, and values they must allow
    ("campaign", "campaign_status"): {"ENABLED", "PAUSED", "REMOVED"},
    ("keyword_view", "ad_group_criterion_keyword_match_type"): {"EXACT", "PHRASE", "BROAD"},
    ("campaign", "segments_device"): {"MOBILE", "DESKTOP", "TABLET"},
}


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def shipped_feeds_doc() -> dict[str, Any]:
    return yaml.load(SHIPPED_FEEDS.read_text(), Loader=_LOADER)


def shipped_customers_doc() -> dict[str, Any]:
    return yaml.load(SHIPPED_CUSTOMERS.read_text(), Loader=_LOADER)


def write(tmp_path: Path, doc: Any, name: str = "feeds.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.dump(copy.deepcopy(doc), Dumper=_DUMPER, sort_keys=False))
    return path


# --------------------------------------------------------------------------- shipped config


def test_shipped_config_loads():
    config = load_pipeline_config()
    assert len(config.feeds) >= 6
    assert set(config.feeds) >= {
        "campaign",
        "ad_group",
        "keyword_view",
        "search_term_view",
        "geographic_view",
        "account",
        "click_view",
    }
    assert config.start_date == date(2026, 1, 1)
    assert config.lookback_days == 3
    assert len(config.customers) >= 5
    currencies = [c.currency for c in config.customers.values()]
    assert {"USD", "EUR", "GBP"} <= set(currencies)
    assert currencies.count("USD") > len(currencies) / 2
    for customer_id, customer in config.customers.items():
        assert customer_id == customer.customer_id and customer_id.isdigit()
        assert len(customer_id) == 10
        assert customer.tags and all(isinstance(v, str) for v in customer.tags.values())


@pytest.mark.parametrize("name", list(load_feeds()))
def test_shipped_feed_is_consistent(name: str):
    feed = load_feeds()[name]
    names = [c.name for c in feed.columns]
    assert len(set(names)) == len(names)
    assert all(c.type in ARROW_TYPES for c in feed.columns)
    assert {"customer_id", "customer_currency_code"} <= set(names)
    # GAQL: SELECT list == the columns' fields in order, date placeholder in the WHERE clause
    select = feed.gaql.split("SELECT", 1)[1].split("FROM", 1)[0]
    assert [f.strip() for f in select.split(",")] == [c.field for c in feed.columns]
    assert f"FROM {feed.resource}" in feed.gaql
    assert "segments.date = '2026-03-04'" in feed.query_for(date(2026, 3, 4))
    # primary key, rules and row_schema only name existing columns
    assert set(feed.primary_key) <= set(names)
    assert not any(feed.column(c).nullable for c in feed.primary_key)
    rules = feed.rules
    assert rules.date_column == "segments_date" and feed.column("segments_date").type == "date32"
    assert rules.currency_column == "customer_currency_code"
    assert set(rules.non_negative) | set(rules.not_null) <= set(names)
    assert "customer_id" in rules.not_null
    Draft202012Validator.check_schema(feed.row_schema)
    props = feed.row_schema["properties"]
    assert set(props) <= set(names)
    assert "required" not in feed.row_schema
    assert props["customer_currency_code"]["pattern"] == "^[A-Z]{3}$"
    for col in rules.non_negative:
        assert "minimum" not in props[col] and "exclusiveMinimum" not in props[col]
    # types: ids and *_micros int64, conversions double, the date date32
    for col in feed.columns:
        if col.name.endswith("_id") or col.name.endswith("_micros"):
            assert col.type == "int64", col.name
        if col.name in ("metrics_conversions", "metrics_conversions_value"):
            assert col.type == "double"
    if name == "click_view":
        assert not rules.clicks_le_impressions and "metrics_impressions" not in names
    else:
        assert rules.clicks_le_impressions
        assert {"metrics_cost_micros", "metrics_clicks", "metrics_impressions"} <= set(rules.non_negative)


def test_enum_columns_have_enums():
    feeds = load_feeds()
    for (feed, column), values in ENUM_COLUMNS.items():
        assert values <= set(feeds[feed].row_schema["properties"][column]["enum"])


def test_row_schema_accepts_a_plausible_row_and_rejects_bad_enum():
    feed = load_feeds()["campaign"]
    row = {
        "customer_id": 1234567890,
        "customer_currency_code": "USD",
        "campaign_id": 17,
        "campaign_name": "Brand",
        "campaign_status": "ENABLED",
        "campaign_advertising_channel_type": "SEARCH",
        "campaign_bidding_strategy_type": None,
        "segments_date": "2026-01-02",
        "segments_device": "MOBILE",
        "metrics_impressions": 10,
        "metrics_clicks": 2,
        "metrics_cost_micros": -5,
        "metrics_conversions": 0.5,
        "metrics_conversions_value": 1.0,
    }
    validator = Draft202012Validator(feed.row_schema)
    assert validator.is_valid(row)  # a negative cost is cost_non_negative's job, not row_schema's
    assert not validator.is_valid({**row, "campaign_status": "ARCHIVED"})
    assert not validator.is_valid({**row, "customer_currency_code": "usd"})
    partial = dict(row)
    del partial["campaign_name"]
    assert validator.is_valid(partial)  # column presence is the schema rule's job


def test_feeds_do_not_share_row_schema_objects():
    feeds = load_feeds()
    campaign = feeds["campaign"].row_schema["properties"]["segments_device"]
    ad_group = feeds["ad_group"].row_schema["properties"]["segments_device"]
    assert campaign == ad_group and campaign is not ad_group  # YAML aliases are copied


def test_hyphenated_customer_id_is_normalised(tmp_path):
    doc = shipped_customers_doc()
    doc["customers"][0]["customer_id"] = "123-456-7890"
    customers = load_customers(write(tmp_path, doc, "customers.yaml"))
    assert "1234567890" in customers
    assert customers["1234567890"].customer_id == "1234567890"


# --------------------------------------------------------------------------- bad feed config

Mutation = Callable[[dict], None]


def _set(path: list, value: Any) -> Mutation:
    def mutate(doc: dict) -> None:
        target = doc
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return mutate


def _delete(path: list) -> Mutation:
    def mutate(doc: dict) -> None:
        target = doc
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return mutate


def _duplicate_column(doc: dict) -> None:
    columns = doc["feeds"][0]["columns"]
    columns.append(dict(columns[2]))


def _drop_gaql_field(doc: dict) -> None:
    feed = doc["feeds"][0]
    feed["gaql"] = feed["gaql"].replace(" campaign.name,", "")


def _swap_gaql_fields(doc: dict) -> None:
    feed = doc["feeds"][0]
    feed["gaql"] = feed["gaql"].replace("metrics.clicks, metrics.cost_micros", "metrics.cost_micros, metrics.clicks")


def _no_placeholder(doc: dict) -> None:
    feed = doc["feeds"][1]
    feed["gaql"] = feed["gaql"].replace("'{date}'", "'2026-01-01'")


def _wrong_from(doc: dict) -> None:
    feed = doc["feeds"][0]
    feed["gaql"] = feed["gaql"].replace("FROM campaign", "FROM ad_group")


BAD_FEEDS: list[tuple[str, Mutation, str, str]] = [
    (
        "unknown arrow type",
        _set(["feeds", 2, "columns", 4, "type"], "int32"),
        "feeds[2].columns[4].type",
        "unknown Arrow type 'int32'",
    ),
    ("duplicate feed", _set(["feeds", 3, "name"], "campaign"), "feeds[3].name", "duplicate feed 'campaign'"),
    ("duplicate column", _duplicate_column, "feeds[0].columns[14].field", "duplicate column 'campaign_id'"),
    (
        "bad field path",
        _set(["feeds", 0, "columns", 1, "field"], "Customer.Currency"),
        "feeds[0].columns[1].field",
        "not a GAQL field",
    ),
    (
        "nullable not bool",
        _set(["feeds", 0, "columns", 1, "nullable"], "no"),
        "feeds[0].columns[1].nullable",
        "true or false",
    ),
    (
        "primary key names a missing column",
        _set(["feeds", 1, "primary_key", 3], "segments_hour"),
        "feeds[1].primary_key[3]",
        "no column 'segments_hour'",
    ),
    ("empty primary key", _set(["feeds", 1, "primary_key"], []), "feeds[1].primary_key", "at least one column"),
    (
        "nullable primary key",
        _set(["feeds", 0, "columns", 8, "nullable"], True),
        "feeds[0].primary_key[3]",
        "nullable: false",
    ),
    ("gaql misses a column", _drop_gaql_field, "feeds[0].gaql", "missing ['campaign.name']"),
    ("gaql order differs", _swap_gaql_fields, "feeds[0].gaql", "order differs"),
    ("gaql without placeholder", _no_placeholder, "feeds[1].gaql", "'{date}'"),
    ("gaql from another resource", _wrong_from, "feeds[0].gaql", "does not match resource"),
    ("gaql not a query", _set(["feeds", 0, "gaql"], "campaign please"), "feeds[0].gaql", "SELECT <fields> FROM"),
    (
        "rule names a missing column",
        _set(["feeds", 4, "rules", "non_negative", 0], "metrics_cost"),
        "feeds[4].rules.non_negative[0]",
        "no column 'metrics_cost'",
    ),
    (
        "not_null names a missing column",
        _set(["feeds", 0, "rules", "not_null", 1], "ad_group_id"),
        "feeds[0].rules.not_null[1]",
        "no column 'ad_group_id'",
    ),
    (
        "date column is not a date",
        _set(["feeds", 0, "rules", "date_column"], "campaign_name"),
        "feeds[0].rules.date_column",
        "not date32",
    ),
    (
        "currency column missing",
        _set(["feeds", 5, "rules", "currency_column"], "currency"),
        "feeds[5].rules.currency_column",
        "no column 'currency'",
    ),
    (
        "non_negative on a string",
        _set(["feeds", 0, "rules", "non_negative", 0], "campaign_name"),
        "feeds[0].rules.non_negative[0]",
        "not int64 or double",
    ),
    (
        "clicks_le_impressions without impressions",
        _set(["feeds", 6, "rules", "clicks_le_impressions"], True),
        "feeds[6].rules.clicks_le_impressions",
        "metrics_impressions",
    ),
    (
        "unknown rule",
        _set(["feeds", 0, "rules", "positive"], ["metrics_clicks"]),
        "feeds[0].rules.positive",
        "unknown key",
    ),
    (
        "row_schema not a JSON Schema",
        _set(["feeds", 0, "row_schema", "properties", "campaign_id", "type"], "integr"),
        "feeds[0].row_schema.properties.campaign_id.type",
        "not a valid JSON Schema",
    ),
    (
        "row_schema bad minimum",
        _set(["feeds", 0, "row_schema", "properties", "campaign_id", "minimum"], "one"),
        "feeds[0].row_schema.properties.campaign_id.minimum",
        "not a valid JSON Schema",
    ),
    (
        "row_schema unsupported keyword",
        _set(["feeds", 0, "row_schema", "properties", "campaign_id", "multipleOf"], 2),
        "feeds[0].row_schema.properties.campaign_id.multipleOf",
        "unsupported keyword",
    ),
    (
        "row_schema uses required",
        _set(["feeds", 0, "row_schema", "required"], ["campaign_id"]),
        "feeds[0].row_schema.required",
        "unsupported keyword at top level",
    ),
    (
        "row_schema unsupported format",
        _set(["feeds", 0, "row_schema", "properties", "campaign_name", "format"], "email"),
        "feeds[0].row_schema.properties.campaign_name.format",
        "only 'date'",
    ),
    (
        "row_schema names a missing column",
        _set(["feeds", 0, "row_schema", "properties", "ad_group_id"], {"type": "integer"}),
        "feeds[0].row_schema.properties.ad_group_id",
        "no column 'ad_group_id'",
    ),
    (
        "row_schema type contradicts the column",
        _set(["feeds", 0, "row_schema", "properties", "campaign_id", "type"], "string"),
        "feeds[0].row_schema.properties.campaign_id.type",
        "cannot hold column type int64",
    ),
    (
        "row_schema minimum on a non_negative column",
        _set(["feeds", 0, "row_schema", "properties", "metrics_cost_micros", "minimum"], 0),
        "feeds[0].row_schema.properties.metrics_cost_micros.minimum",
        "cost_non_negative",
    ),
    (
        "row_schema not an object schema",
        _set(["feeds", 0, "row_schema", "type"], "array"),
        "feeds[0].row_schema.type",
        "must be 'object'",
    ),
    (
        "bad feed name",
        _set(["feeds", 0, "name"], "Campaign-Daily"),
        "feeds[0].name",
        "must match ^[a-z][a-z0-9_]{0,62}$",
    ),
    ("missing required key", _delete(["feeds", 3, "primary_key"]), "feeds[3].primary_key", "missing required key"),
    ("unknown feed key", _set(["feeds", 0, "primary_keys"], ["customer_id"]), "feeds[0].primary_keys", "unknown key"),
    ("feeds not a list", _set(["feeds"], {"campaign": {}}), "feeds", "non-empty list"),
    ("bad start date", _set(["pipeline", "start_date"], "01/02/2026"), "pipeline.start_date", "YYYY-MM-DD"),
    ("negative lookback", _set(["pipeline", "lookback_days"], -1), "pipeline.lookback_days", "integer from 0"),
    ("missing pipeline section", _delete(["pipeline"]), "pipeline", "missing required key"),
]


@pytest.mark.parametrize("mutate,where,why", [c[1:] for c in BAD_FEEDS], ids=[c[0] for c in BAD_FEEDS])
def test_bad_feed_config_fails_with_file_path_and_reason(tmp_path, mutate, where, why):
    doc = shipped_feeds_doc()
    mutate(doc)
    path = write(tmp_path, doc)
    with pytest.raises(ConfigError) as info:
        load_pipeline_config(path, SHIPPED_CUSTOMERS)
    err = info.value
    assert isinstance(err, GridcatError) and err.code == INVALID_ARGUMENT
    assert err.file == str(path)
    assert err.path == where, err.message
    assert why in err.reason, err.message
    assert err.message.startswith(f"{path}: {where}: ")
    assert err.to_dict()["details"] == [{"file": str(path), "path": where, "reason": err.reason}]


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - name: campaign\n    columns: [a, b\n  - name: x\n")
    with pytest.raises(ConfigError) as info:
        load_feeds(path)
    assert info.value.file == str(path)
    assert info.value.path.startswith("line ")
    assert "YAML syntax error" in info.value.reason


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_pipeline_config(path, SHIPPED_CUSTOMERS)
    assert info.value.message == f"{path}: file not found"
    with pytest.raises(ConfigError, match="file not found"):
        load_pipeline_config(SHIPPED_FEEDS, tmp_path / "customers.yaml")


def test_empty_or_scalar_document(tmp_path):
    path = tmp_path / "feeds.yaml"
    path.write_text("")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_feeds(path)
    path.write_text("just text\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_feeds(path)


# --------------------------------------------------------------------------- bad customers

BAD_CUSTOMERS: list[tuple[str, Mutation, str, str]] = [
    ("short id", _set(["customers", 1, "customer_id"], "12345"), "customers[1].customer_id", "10-digit"),
    ("letters in id", _set(["customers", 0, "customer_id"], "123-456-789a"), "customers[0].customer_id", "10-digit"),
    (
        "duplicate id",
        _set(["customers", 2, "customer_id"], "123-456-7890"),
        "customers[2].customer_id",
        "duplicate customer id 1234567890",
    ),
    (
        "unknown time zone",
        _set(["customers", 0, "time_zone"], "Mars/Olympus_Mons"),
        "customers[0].time_zone",
        "not an IANA time zone",
    ),
    (
        "time zone directory",
        _set(["customers", 0, "time_zone"], "America"),
        "customers[0].time_zone",
        "not an IANA time zone",
    ),
    ("lowercase currency", _set(["customers", 3, "currency"], "eur"), "customers[3].currency", "ISO 4217"),
    ("non-string tag value", _set(["customers", 0, "tags"], {"tier": 1}), "customers[0].tags", "string value"),
    ("tags not a map", _set(["customers", 0, "tags"], ["prod"]), "customers[0].tags", "map of strings"),
    ("missing name", _delete(["customers", 4, "name"]), "customers[4].name", "missing required key"),
    ("unknown key", _set(["customers", 0, "timezone"], "UTC"), "customers[0].timezone", "unknown key"),
    ("empty list", _set(["customers"], []), "customers", "non-empty list"),
]


@pytest.mark.parametrize("mutate,where,why", [c[1:] for c in BAD_CUSTOMERS], ids=[c[0] for c in BAD_CUSTOMERS])
def test_bad_customers_fail_with_file_path_and_reason(tmp_path, mutate, where, why):
    doc = shipped_customers_doc()
    mutate(doc)
    path = write(tmp_path, doc, "customers.yaml")
    with pytest.raises(ConfigError) as info:
        load_pipeline_config(SHIPPED_FEEDS, path)
    err = info.value
    assert err.code == INVALID_ARGUMENT and err.file == str(path)
    assert err.path == where, err.message
    assert why in err.reason, err.message


def test_row_schema_the_vectorised_validator_cannot_run_fails_at_load(tmp_path):
    """A pattern RE2 cannot run (look-ahead) passes the loader's own checks but not the compiler."""
    doc = shipped_feeds_doc()
    props = doc["feeds"][0]["row_schema"]["properties"]
    column = next(name for name, sub in props.items() if sub.get("type") == "string")
    props[column]["pattern"] = "^(?=A)"
    path = write(tmp_path, doc)
    with pytest.raises(ConfigError) as err:
        load_pipeline_config(path, SHIPPED_CUSTOMERS)
    assert "feeds[0].row_schema" in err.value.message
    assert str(path) in err.value.message


# --------------------------------------------------------------------------- feeds and the synthetic source
#
# Every feed must be one the synthetic source can generate valid rows of; one it cannot fails
# config load naming the feed, the column and where the generator (or column) goes.


def _campaign_copy(doc: dict, name: str, resource: str) -> dict:
    feed = copy.deepcopy(doc["feeds"][0])
    feed["name"], feed["resource"] = name, resource
    feed["gaql"] = feed["gaql"].replace("FROM campaign", f"FROM {resource}")
    return feed


def _add_campaign_column(doc: dict, column: dict, prop: dict) -> None:
    feed = doc["feeds"][0]
    feed["columns"].append(column)
    feed["gaql"] = feed["gaql"].replace(" FROM campaign", f", {column['field']} FROM campaign")
    feed["row_schema"]["properties"][column["field"].replace(".", "_")] = prop


def test_a_feed_the_synthetic_source_has_no_generator_for_fails_load(tmp_path):
    doc = shipped_feeds_doc()
    doc["feeds"].append(_campaign_copy(doc, "mystery_report", "mystery_view"))
    path = write(tmp_path, doc)
    assert "mystery_report" in load_feeds(path)  # well-formed, but the synthetic source cannot pull it
    with pytest.raises(ConfigError) as info:
        load_pipeline_config(path, SHIPPED_CUSTOMERS)
    err = info.value
    assert err.path == f"feeds[{len(doc['feeds']) - 1}].resource", err.message
    assert "feed 'mystery_report'" in err.reason and "resource 'mystery_view'" in err.reason
    assert "GENERATORS in gridcat_pipelines/sources/synthetic_feeds.py" in err.reason


@pytest.mark.parametrize(
    "nullable, prop, not_null, why",
    [
        (False, {"type": "string"}, False, "nullable: false"),
        (True, {"type": "string"}, False, "row_schema does not allow null"),
        (True, {"type": ["string", "null"]}, True, "a validation rule reads it"),
    ],
    ids=["non-nullable", "row_schema rejects null", "a rule reads it"],
)
def test_a_column_the_synthetic_source_cannot_fill_fails_load(tmp_path, nullable, prop, not_null, why):
    doc = shipped_feeds_doc()
    column = {"field": "campaign.start_date", "type": "string", "nullable": nullable}
    _add_campaign_column(doc, column, prop)
    if not_null:
        doc["feeds"][0]["rules"]["not_null"].append("campaign_start_date")
    path = write(tmp_path, doc)
    with pytest.raises(ConfigError) as info:
        load_pipeline_config(path, SHIPPED_CUSTOMERS)
    err = info.value
    assert err.path == "feeds[0].columns[14]", err.message
    assert "column 'campaign_start_date' of feed 'campaign'" in err.reason and why in err.reason
    assert "gridcat_pipelines/sources/synthetic_feeds.py" in err.reason


def test_a_nullable_column_the_synthetic_source_leaves_null_loads_and_validates(tmp_path):
    from gridcat_pipelines.sources.synthetic import SyntheticSource
    from gridcat_pipelines.validation.validator import validate_table

    doc = shipped_feeds_doc()
    _add_campaign_column(doc, {"field": "campaign.start_date", "type": "string"}, {"type": ["string", "null"]})
    config = load_pipeline_config(write(tmp_path, doc), SHIPPED_CUSTOMERS)
    feed, customer = config.feeds["campaign"], next(iter(config.customers.values()))
    table = SyntheticSource(seed=11).table(feed, customer, date(2026, 2, 3))
    assert table.num_rows and table["campaign_start_date"].null_count == table.num_rows
    report = validate_table(table, _Meta(table.num_rows), feed, date(2026, 2, 3), customer=customer)
    assert report.passed, report.error_message(detail=True)


class _Meta:
    def __init__(self, rows: int):
        from gridcat_pipelines.run_ids import new_run_id

        self.run_id, self.schema_version, self.record_count = new_run_id(), "1", rows


# The "add a feed" recipe for a resource the synthetic source already generates: config only.
CAMPAIGN_DEVICE = {
    "name": "campaign_device",
    "resource": "campaign",
    "description": "Daily campaign traffic by device (no conversions).",
    "gaql": "SELECT customer.id, customer.currency_code, campaign.id, segments.date, segments.device, "
    "metrics.impressions, metrics.clicks, metrics.cost_micros FROM campaign "
    "WHERE segments.date = '{date}'",
    "columns": [
        {"field": "customer.id", "type": "int64", "nullable": False},
        {"field": "customer.currency_code", "type": "string", "nullable": False},
        {"field": "campaign.id", "type": "int64", "nullable": False},
        {"field": "segments.date", "type": "date32", "nullable": False},
        {"field": "segments.device", "type": "string", "nullable": False},
        {"field": "metrics.impressions", "type": "int64", "nullable": False},
        {"field": "metrics.clicks", "type": "int64", "nullable": False},
        {"field": "metrics.cost_micros", "type": "int64", "nullable": False},
    ],
    "primary_key": ["customer_id", "campaign_id", "segments_date", "segments_device"],
    "schema_version": "1",
    "row_schema": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "customer_id": {"type": "integer", "minimum": 1, "maximum": 9999999999},
            "customer_currency_code": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "campaign_id": {"type": "integer", "minimum": 1},
            "segments_date": {"type": "string", "format": "date"},
            "segments_device": {"type": "string", "enum": ["MOBILE", "DESKTOP", "TABLET", "CONNECTED_TV", "OTHER"]},
            "metrics_impressions": {"type": "integer"},
            "metrics_clicks": {"type": "integer"},
            "metrics_cost_micros": {"type": "integer"},
        },
    },
    "rules": {
        "non_negative": ["metrics_cost_micros", "metrics_clicks", "metrics_impressions"],
        "clicks_le_impressions": True,
        "date_column": "segments_date",
        "not_null": ["customer_id", "campaign_id"],
        "currency_column": "customer_currency_code",
    },
}


def test_a_feed_over_a_generated_resource_needs_only_its_config_entry(tmp_path):
    import dagster as dg

    from gridcat_pipelines.config import Settings
    from gridcat_pipelines.definitions import build_defs
    from gridcat_pipelines.sources.faults import FAULT_RULE, applicable_kinds
    from gridcat_pipelines.sources.synthetic import SyntheticSource
    from gridcat_pipelines.validation.rules import rules_for
    from gridcat_pipelines.validation.validator import validate_table

    doc = shipped_feeds_doc()
    doc["feeds"].append(CAMPAIGN_DEVICE)
    path = write(tmp_path, doc)
    config = load_pipeline_config(path, SHIPPED_CUSTOMERS)
    feed = config.feeds["campaign_device"]

    settings = Settings.from_env({"GRIDCAT_HOME": str(tmp_path / "home"), "GRIDCAT_FEEDS_CONFIG": str(path)})
    graph = build_defs(settings).resolve_asset_graph()
    validated = dg.AssetKey(["google_ads", "validated", "campaign_device"])
    assert graph.has(dg.AssetKey(["google_ads", "raw", "campaign_device"])) and graph.has(validated)
    assert {k.name for k in graph.asset_check_keys if k.asset_key == validated} == set(rules_for(feed))

    source, day = SyntheticSource(seed=11), date(2026, 2, 3)
    rows = 0
    for customer in config.customers.values():
        table = source.table(feed, customer, day)
        assert validate_table(table, _Meta(table.num_rows), feed, day, customer=customer).passed
        rows += table.num_rows
    assert rows > 0
    customer = config.customers["4567890123"]
    kinds = [k for k in applicable_kinds(feed) if FAULT_RULE[k] is not None]
    # every column is in the key or read by a rule, so only the rule faults apply
    assert set(kinds) == {"negative_cost", "wrong_date", "duplicate_primary_key", "mixed_currency"}
    for kind in kinds:
        table = source.table(feed, customer, day, fault=kind)
        report = validate_table(table, _Meta(table.num_rows), feed, day, customer=customer)
        assert [r.rule for r in report.failed_rules] == [FAULT_RULE[kind]], (kind, report.to_json())
