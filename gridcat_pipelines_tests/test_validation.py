"""Validation of raw runs: every rule passing, failing (exact counts and samples) and skipping,
the report, the vectorised row schema against ``jsonschema`` itself, and the real feeds."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import jsonschema
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridcat_pipelines.errors import (
    FAILED_PRECONDITION,
    INVALID_ARGUMENT,
    NOT_FOUND,
    GridcatError,
    failed_precondition,
    not_found,
)
from gridcat_pipelines.feeds.models import ColumnSpec, CustomerConfig, FeedConfig, FeedRules
from gridcat_pipelines.run_ids import new_run_id
from gridcat_pipelines.state.keys import PartitionKey
from gridcat_pipelines.validation.json_schema import RowSchemaError, compile_row_schema
from gridcat_pipelines.validation.report import RuleResult, ValidationReport
from gridcat_pipelines.validation.rules import RULES, rules_for
from gridcat_pipelines.validation.validator import validate_run, validate_table

DAY = date(2026, 11, 1)
CUSTOMER = CustomerConfig("1234567890", "Test Co", "America/New_York", "USD")

# --------------------------------------------------------------------------- fixtures

COLUMNS = (
    ColumnSpec("customer.id", "int64", False),
    ColumnSpec("customer.currency_code", "string", False),
    ColumnSpec("campaign.id", "int64", False),
    ColumnSpec("campaign.name", "string"),
    ColumnSpec("campaign.status", "string", False),
    ColumnSpec("segments.date", "date32", False),
    ColumnSpec("segments.device", "string", False),
    ColumnSpec("metrics.impressions", "int64", False),
    ColumnSpec("metrics.clicks", "int64", False),
    ColumnSpec("metrics.cost_micros", "int64", False),
    ColumnSpec("metrics.conversions", "double", False),
)

ROW_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "customer_id": {"type": "integer", "minimum": 1, "maximum": 9999999999},
        "customer_currency_code": {"type": "string", "pattern": "^[A-Z]{3}$"},
        # null allowed here: a null id is rule ids_not_null's failure (see test_null_id_overlap)
        "campaign_id": {"type": ["integer", "null"], "minimum": 1},
        "campaign_name": {"type": ["string", "null"], "maxLength": 20},
        "campaign_status": {"type": "string", "enum": ["ENABLED", "PAUSED", "REMOVED"]},
        "segments_date": {"type": "string", "format": "date"},
        "segments_device": {"enum": ["MOBILE", "DESKTOP", "TABLET"]},
        "metrics_impressions": {"type": "integer"},
        "metrics_clicks": {"type": "integer"},
        "metrics_cost_micros": {"type": "integer"},
        "metrics_conversions": {"type": "number"},
    },
}


def make_feed(**changes: Any) -> FeedConfig:
    """A campaign-like feed with every rule enabled."""
    feed = FeedConfig(
        name="campaign",
        resource="campaign",
        gaql="SELECT ... FROM campaign WHERE segments.date = '{date}'",
        columns=COLUMNS,
        primary_key=("customer_id", "campaign_id", "segments_date", "segments_device"),
        schema_version="1",
        row_schema=ROW_SCHEMA,
        rules=FeedRules(
            non_negative=("metrics_cost_micros", "metrics_clicks", "metrics_impressions"),
            clicks_le_impressions=True,
            date_column="segments_date",
            not_null=("customer_id", "campaign_id"),
            currency_column="customer_currency_code",
        ),
    )
    return replace(feed, **changes)


FEED = make_feed()
KEY = PartitionKey.parse(CUSTOMER.customer_id, FEED.name, DAY)


def clean_rows(n: int = 6) -> list[dict[str, Any]]:
    devices = ["MOBILE", "DESKTOP", "TABLET"]
    return [
        {
            "customer_id": 1234567890,
            "customer_currency_code": "USD",
            "campaign_id": 100 + i // 3,
            "campaign_name": None if i == 0 else f"camp {i // 3}",
            "campaign_status": "ENABLED",
            "segments_date": DAY,
            "segments_device": devices[i % 3],
            "metrics_impressions": 100 * (i + 1),
            "metrics_clicks": 10 * i,
            "metrics_cost_micros": 1_000_000 * i,
            "metrics_conversions": 0.5 * i,
        }
        for i in range(n)
    ]


def table_of(rows: list[dict[str, Any]], feed: FeedConfig = FEED) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=feed.arrow_schema())


@dataclass(frozen=True)
class StandInFile:
    """TEST FIXTURE: the shape of a raw sink RunFile entry."""

    path: str
    bytes: int
    rows: int
    sha256: str = "0" * 64


@dataclass(frozen=True)
class StandInMetadata:
    """TEST FIXTURE standing in for the raw sink's RunMetadata (only the fields validation reads)."""

    run_id: str
    schema_version: str
    record_count: int
    files: tuple[StandInFile, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def meta_for(table: pa.Table, **changes: Any) -> StandInMetadata:
    meta = StandInMetadata(
        run_id=RUN_ID,
        schema_version=FEED.schema_version,
        record_count=table.num_rows,
        files=(StandInFile("part-00000.parquet", 1234, table.num_rows),),
    )
    return replace(meta, **changes)


RUN_ID = new_run_id()


def check(table: pa.Table, feed: FeedConfig = FEED, **kwargs: Any) -> ValidationReport:
    meta = kwargs.pop("metadata", None) or meta_for(table)
    return validate_table(table, meta, feed, DAY, key=KEY, **kwargs)


def outcomes(report: ValidationReport) -> dict[str, str]:
    return {r.rule: r.outcome for r in report.rules}


def failed(report: ValidationReport) -> dict[str, int]:
    return {r.rule: r.failing_rows for r in report.failed_rules}


# --------------------------------------------------------------------------- rules_for


def test_rules_for_a_feed_with_every_rule_lists_all_rules_in_order():
    assert rules_for(FEED) == RULES
    assert RULES == (
        "schema",
        "metadata_consistency",
        "row_schema",
        "cost_non_negative",
        "clicks_le_impressions",
        "date_matches_partition",
        "ids_not_null",
        "primary_key_unique",
        "single_currency",
    )


def test_rules_for_leaves_out_rules_the_feed_does_not_configure():
    feed = make_feed(rules=FeedRules(date_column="segments_date"))
    assert rules_for(feed) == (
        "schema",
        "metadata_consistency",
        "row_schema",
        "date_matches_partition",
        "primary_key_unique",
    )
    report = check(table_of(clean_rows()), feed)
    assert [r.rule for r in report.rules] == list(rules_for(feed))
    assert report.passed


# --------------------------------------------------------------------------- clean and empty


def test_clean_table_passes_every_rule():
    report = check(table_of(clean_rows()), customer=CUSTOMER)
    assert outcomes(report) == {rule: "passed" for rule in RULES}
    assert report.passed and report.error_message() is None and report.failed_rules == ()
    assert report.record_count == 6 and report.schema_version == "1" and report.run_id == RUN_ID


def test_empty_table_passes_every_rule():
    report = check(table_of([]), customer=CUSTOMER)
    assert outcomes(report) == {rule: "passed" for rule in RULES}
    assert report.record_count == 0


def test_empty_table_still_gets_schema_and_metadata_checks():
    table = table_of([]).drop_columns(["campaign_name"])
    report = check(table, metadata=meta_for(table, record_count=3, schema_version="2"))
    assert failed(report) == {"schema": 1, "metadata_consistency": 2}  # schema_version, record_count
    assert report.result("row_schema").outcome == "passed"


# --------------------------------------------------------------------------- schema


def test_schema_missing_wrong_type_and_extra_columns_each_count():
    table = table_of(clean_rows())
    table = table.drop_columns(["campaign_name"])
    i = table.schema.get_field_index("segments_device")
    table = table.set_column(i, "segments_device", pa.array([1, 2, 3, 4, 5, 6], pa.int64()))
    table = table.append_column("surprise", pa.array(["x"] * 6))
    result = check(table).result("schema")
    assert result.failed and result.failing_rows == 3
    assert result.message == "missing: campaign_name; wrong type: segments_device (int64, want string); extra: surprise"
    assert [s["problem"] for s in result.samples] == ["missing", "wrong type", "extra"]


def test_schema_accepts_nullable_fields_and_any_column_order():
    table = table_of(clean_rows())
    reordered = table.select(list(reversed(table.column_names)))
    loose = pa.schema([f.with_nullable(True) for f in reordered.schema])
    report = check(reordered.cast(loose))
    assert report.result("schema").passed and report.passed


# --------------------------------------------------------------------------- metadata_consistency


def test_metadata_consistency_counts_each_mismatch():
    table = table_of(clean_rows())
    meta = meta_for(
        table,
        run_id=new_run_id(),
        schema_version="2",
        record_count=7,
        files=(StandInFile("part-00000.parquet", 10, 5),),
    )
    result = check(table, metadata=meta, run_id=RUN_ID, file_problems=["part-00000.parquet: sha256 mismatch"]).result(
        "metadata_consistency"
    )
    assert result.failed and result.failing_rows == 4
    assert "run_id" in result.message and "schema_version '2'" in result.message
    assert "record_count 7, data has 6 rows" in result.message and "sha256 mismatch" in result.message
    assert [s["problem"] for s in result.samples][-1] == "part-00000.parquet: sha256 mismatch"


def test_metadata_consistency_passes_for_matching_metadata():
    table = table_of(clean_rows())
    result = check(table).result("metadata_consistency")
    assert result.passed and result.failing_rows == 0


def test_file_problems_fail_only_metadata_consistency():
    report = check(table_of(clean_rows()), file_problems=["part-00000.parquet: size 10, metadata says 1234"])
    assert failed(report) == {"metadata_consistency": 1}
    assert report.error_message() == "metadata_consistency: 1 problem"


# --------------------------------------------------------------------------- row_schema


def test_row_schema_counts_rows_with_any_violation_and_samples_them():
    rows = clean_rows()
    rows[1]["campaign_status"] = "ARCHIVED"  # enum
    rows[1]["customer_currency_code"] = "usd"  # pattern (same row)
    rows[3]["campaign_name"] = "x" * 21  # maxLength
    rows[4]["customer_id"] = 0  # minimum
    result = check(table_of(rows)).result("row_schema")
    assert result.failed and result.failing_rows == 3
    assert [s["row"] for s in result.samples] == [1, 3, 4]
    assert result.samples[0]["errors"] == [
        {"property": "customer_currency_code", "keyword": "pattern", "value": "usd"},
        {"property": "campaign_status", "keyword": "enum", "value": "ARCHIVED"},
    ]
    assert result.samples[1]["errors"] == [{"property": "campaign_name", "keyword": "maxLength", "value": "x" * 21}]
    assert result.samples[2]["errors"] == [{"property": "customer_id", "keyword": "minimum", "value": 0}]
    assert result.samples[0]["values"]["segments_date"] == DAY.isoformat()
    json.dumps(result.samples)  # JSON-safe
    assert "customer_currency_code/pattern (1)" in result.message


def test_row_schema_keeps_at_most_five_samples():
    rows = clean_rows(9)
    for row in rows:
        row["campaign_status"] = "NOPE"
    result = check(table_of(rows)).result("row_schema")
    assert result.failing_rows == 9 and len(result.samples) == 5


def test_row_schema_null_fails_type_unless_null_is_listed():
    rows = clean_rows()
    rows[2]["metrics_conversions"] = None  # type: number -> null fails
    rows[3]["campaign_name"] = None  # type: [string, null] -> ok
    result = check(table_of(rows)).result("row_schema")
    assert result.failing_rows == 1
    assert result.samples[0]["errors"] == [{"property": "metrics_conversions", "keyword": "type", "value": None}]


def test_row_schema_skips_properties_of_missing_or_mistyped_columns():
    rows = clean_rows()
    rows[0]["campaign_status"] = "BAD"  # a real row_schema failure in a good column
    table = table_of(rows).drop_columns(["segments_device"])
    i = table.schema.get_field_index("customer_currency_code")
    table = table.set_column(i, "customer_currency_code", pa.array([1] * 6, pa.int64()))
    report = check(table)
    result = report.result("row_schema")
    assert result.failed and result.failing_rows == 1
    assert [e["property"] for e in result.samples[0]["errors"]] == ["campaign_status"]
    assert "not evaluated" in result.message and "segments_device" in result.message
    assert report.result("schema").failing_rows == 2


def test_row_schema_with_no_usable_column_is_skipped():
    feed = make_feed(row_schema={"type": "object", "properties": {"campaign_status": {"enum": ["ENABLED"]}}})
    table = table_of(clean_rows()).drop_columns(["campaign_status"])
    assert check(table, feed).result("row_schema").outcome == "skipped"


def test_row_schema_without_checks_passes():
    feed = make_feed(row_schema={"type": "object"})
    assert check(table_of(clean_rows()), feed).result("row_schema").passed


# --------------------------------------------------------------------------- business rules


def test_cost_non_negative_counts_rows_with_any_negative_column():
    rows = clean_rows()
    rows[1]["metrics_cost_micros"] = -5
    rows[2]["metrics_cost_micros"] = -1
    rows[2]["metrics_impressions"] = -1
    rows[2]["metrics_clicks"] = -2  # keep clicks <= impressions
    report = check(table_of(rows))
    result = report.result("cost_non_negative")
    assert result.failed and result.failing_rows == 2
    assert [s["row"] for s in result.samples] == [1, 2]
    assert result.samples[0]["values"]["metrics_cost_micros"] == -5
    assert failed(report) == {"cost_non_negative": 2}


def test_cost_non_negative_ignores_nulls_and_checks_doubles():
    feed = make_feed(
        rules=replace(FEED.rules, non_negative=("metrics_conversions",)),
        row_schema={"type": "object"},
    )
    rows = clean_rows()
    rows[0]["metrics_conversions"] = None
    rows[1]["metrics_conversions"] = -0.5
    rows[2]["metrics_conversions"] = float("nan")
    rows[3]["metrics_conversions"] = -0.0
    result = check(table_of(rows, feed), feed).result("cost_non_negative")
    assert result.failing_rows == 1 and result.samples[0]["row"] == 1


def test_clicks_le_impressions_counts_rows_and_ignores_nulls():
    rows = clean_rows()
    rows[2]["metrics_clicks"] = rows[2]["metrics_impressions"] + 1
    rows[4]["metrics_clicks"] = 10_000
    feed = make_feed(row_schema={"type": "object"})
    table = table_of(rows, feed)
    result = check(table, feed).result("clicks_le_impressions")
    assert result.failed and result.failing_rows == 2
    assert [s["row"] for s in result.samples] == [2, 4]
    assert set(result.samples[0]["values"]) >= {"metrics_clicks", "metrics_impressions"}
    rows[2]["metrics_impressions"] = None
    assert check(table_of(rows, feed), feed).result("clicks_le_impressions").failing_rows == 1


def test_date_matches_partition_counts_other_dates_and_nulls():
    rows = clean_rows()
    rows[0]["segments_date"] = DAY - timedelta(days=1)
    rows[5]["segments_date"] = None
    feed = make_feed(row_schema={"type": "object"})
    result = check(table_of(rows, feed), feed).result("date_matches_partition")
    assert result.failed and result.failing_rows == 2
    assert [s["values"]["segments_date"] for s in result.samples] == ["2026-10-31", None]


def test_ids_not_null_counts_rows_with_a_null_id():
    rows = clean_rows()
    rows[1]["campaign_id"] = None
    rows[2]["customer_id"] = None
    rows[2]["campaign_id"] = None
    feed = make_feed(row_schema={"type": "object"}, primary_key=("segments_device", "metrics_impressions"))
    result = check(table_of(rows, feed), feed).result("ids_not_null")
    assert result.failed and result.failing_rows == 2
    assert [s["row"] for s in result.samples] == [1, 2]


def test_primary_key_unique_counts_every_row_of_duplicated_keys():
    rows = clean_rows(6)
    rows += [dict(rows[0]), dict(rows[0]), dict(rows[4])]  # 3 copies of row 0, 2 of row 4
    report = check(table_of(rows))
    result = report.result("primary_key_unique")
    assert result.failed and result.failing_rows == 5
    by_rows = sorted((s["rows"], s["copies"]) for s in result.samples)
    assert by_rows == [([0, 6, 7], 3), ([4, 8], 2)]
    key = next(s["key"] for s in result.samples if s["copies"] == 3)
    assert key == {
        "customer_id": 1234567890,
        "campaign_id": 100,
        "segments_date": "2026-11-01",
        "segments_device": "MOBILE",
    }
    assert failed(report) == {"primary_key_unique": 5}


def test_primary_key_unique_treats_null_as_a_value():
    feed = make_feed(row_schema={"type": "object"}, rules=FeedRules())
    rows = clean_rows(4)
    for row in rows[:2]:
        row["segments_device"] = None
        row["campaign_id"] = 1
    rows[2]["segments_device"] = None  # a different key (campaign_id differs)
    result = check(table_of(rows, feed), feed).result("primary_key_unique")
    assert result.failing_rows == 2
    assert result.samples[0]["rows"] == [0, 1] and result.samples[0]["key"]["segments_device"] is None


def test_primary_key_unique_when_every_key_column_is_constant():
    rows = [clean_rows(1)[0] for _ in range(4)]
    result = check(table_of(rows)).result("primary_key_unique")
    assert result.failing_rows == 4 and result.samples[0]["rows"] == [0, 1, 2, 3]
    assert result.samples[0]["key"]["segments_device"] == "MOBILE"


PK_COLUMNS = (
    ColumnSpec("k.i", "int64"),
    ColumnSpec("k.d", "date32"),
    ColumnSpec("k.s", "string"),
    ColumnSpec("k.b", "bool"),
)


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(-2, 2), st.integers(-(2**63), 2**63 - 1)),
            st.one_of(st.none(), st.sampled_from([date(2026, 1, 1), date(1970, 1, 1)])),
            st.one_of(st.none(), st.sampled_from(["a", "b"])),
            st.one_of(st.none(), st.booleans()),
        ),
        max_size=30,
    ),
    pk=st.sampled_from([("k_i",), ("k_i", "k_d"), ("k_i", "k_d", "k_b"), ("k_s", "k_i"), ("k_d",), ("k_b", "k_d")]),
    chunk=st.integers(1, 7),
)
def test_primary_key_unique_matches_a_naive_count(keys, pk, chunk):
    """Both the hash fast path (integer-like keys) and the exact grouping give the naive answer."""
    from collections import Counter

    from gridcat_pipelines.validation.business_rules import primary_key_unique

    feed = make_feed(columns=PK_COLUMNS, primary_key=pk, row_schema={}, rules=FeedRules(date_column="k_d"))
    names = ["k_i", "k_d", "k_s", "k_b"]
    table = pa.Table.from_pylist([dict(zip(names, k)) for k in keys], schema=feed.arrow_schema())
    table = pa.Table.from_batches(table.to_batches(max_chunksize=chunk), schema=table.schema)
    tuples = [tuple(k[names.index(c)] for c in pk) for k in keys]
    counts = Counter(tuples)
    expected = sum(n for n in counts.values() if n > 1)
    result = primary_key_unique(table, feed)
    assert result.failing_rows == expected and result.passed == (expected == 0)
    for sample in result.samples:
        key = tuple(sample["key"][c] for c in pk)
        want = [i for i, t in enumerate(tuples) if tuple(v.isoformat() if isinstance(v, date) else v for v in t) == key]
        assert sample["rows"] == want[:5] and sample["copies"] == len(want) > 1


def test_row_schema_checks_a_constant_column_once_with_the_same_verdict():
    rows = clean_rows()
    for row in rows:
        row["customer_currency_code"] = "usd"  # fails the pattern on every row
    result = check(table_of(rows)).result("row_schema")
    assert result.failing_rows == 6 and [s["row"] for s in result.samples] == [0, 1, 2, 3, 4]
    assert result.samples[0]["errors"] == [{"property": "customer_currency_code", "keyword": "pattern", "value": "usd"}]
    rows[5]["customer_currency_code"] = "USD"  # no longer constant: evaluated row by row
    assert check(table_of(rows)).result("row_schema").failing_rows == 5


def test_single_currency_counts_rows_outside_the_majority():
    rows = clean_rows()
    rows[1]["customer_currency_code"] = "EUR"
    rows[3]["customer_currency_code"] = "GBP"
    result = check(table_of(rows)).result("single_currency")
    assert result.failed and result.failing_rows == 2
    assert "not in USD (the majority currency)" in result.message
    assert [s["values"]["customer_currency_code"] for s in result.samples] == ["EUR", "GBP"]


def test_single_currency_with_a_customer_expects_its_configured_currency():
    rows = clean_rows()
    for row in rows:
        row["customer_currency_code"] = "EUR"
    table = table_of(rows)
    assert check(table).result("single_currency").passed  # one currency, no customer to compare
    result = check(table, customer=CUSTOMER).result("single_currency")
    assert result.failed and result.failing_rows == 6 and "configured currency" in result.message


def test_single_currency_ignores_nulls():
    feed = make_feed(row_schema={"type": "object"})
    rows = clean_rows()
    rows[0]["customer_currency_code"] = None
    assert check(table_of(rows, feed), feed, customer=CUSTOMER).result("single_currency").passed


# --------------------------------------------------------------------------- skipping


def test_rule_with_a_missing_column_is_skipped_not_failed():
    table = table_of(clean_rows()).drop_columns(["metrics_clicks"])
    report = check(table)
    assert outcomes(report) == {
        "schema": "failed",
        "metadata_consistency": "passed",
        "row_schema": "passed",
        "cost_non_negative": "skipped",
        "clicks_le_impressions": "skipped",
        "date_matches_partition": "passed",
        "ids_not_null": "passed",
        "primary_key_unique": "passed",
        "single_currency": "passed",
    }
    skipped = report.result("clicks_le_impressions")
    assert not skipped.passed and not skipped.failed and skipped.failing_rows == 0
    assert "metrics_clicks" in skipped.message
    assert report.error_message() == "schema: 1 column"
    assert not report.passed


def test_rule_with_a_mistyped_column_is_skipped():
    table = table_of(clean_rows())
    i = table.schema.get_field_index("segments_date")
    table = table.set_column(i, "segments_date", pa.array([DAY.isoformat()] * 6))
    report = check(table)
    assert report.result("date_matches_partition").outcome == "skipped"
    assert report.result("primary_key_unique").outcome == "skipped"
    assert failed(report) == {"schema": 1}
    assert "wrong type: segments_date (string, want date32)" in report.result("schema").message


# Each defect fails exactly its own rule; every other rule passes.
DEFECTS = {
    "row_schema": lambda rows: rows[0].update(campaign_status="ARCHIVED"),
    "cost_non_negative": lambda rows: rows[1].update(metrics_cost_micros=-1),
    "clicks_le_impressions": lambda rows: rows[2].update(metrics_clicks=10_000),
    "date_matches_partition": lambda rows: rows[3].update(segments_date=DAY + timedelta(days=1)),
    "ids_not_null": lambda rows: rows[4].update(campaign_id=None),
    "primary_key_unique": lambda rows: rows.append(dict(rows[5])),
    "single_currency": lambda rows: rows[5].update(customer_currency_code="EUR"),
}


@pytest.mark.parametrize("rule", sorted(DEFECTS))
def test_each_defect_fails_exactly_its_rule(rule):
    rows = clean_rows()
    DEFECTS[rule](rows)
    report = check(table_of(rows), customer=CUSTOMER)
    assert failed(report) == {rule: 2 if rule == "primary_key_unique" else 1}
    assert report.error_message() == f"{rule}: {failed(report)[rule]} row{'s' if rule == 'primary_key_unique' else ''}"


def test_null_id_fails_row_schema_too_when_its_type_excludes_null():
    """jsonschema semantics are kept: ``type: integer`` rejects null, so a null customer_id
    fails both ids_not_null and row_schema; list "null" in the id's type to leave it to one rule."""
    rows = clean_rows()
    rows[0]["customer_id"] = None
    report = check(table_of(rows))
    assert failed(report) == {"row_schema": 1, "ids_not_null": 1}
    assert report.result("row_schema").samples[0]["errors"] == [
        {"property": "customer_id", "keyword": "type", "value": None}
    ]


# --------------------------------------------------------------------------- the report


def test_report_error_message_lists_failed_rules_in_rule_order():
    rows = clean_rows()
    rows.append(dict(rows[0]))
    rows[1]["campaign_status"] = "X"
    rows[2]["campaign_status"] = "Y"
    rows[3]["campaign_status"] = "Z"
    report = check(table_of(rows))
    assert report.error_message() == "row_schema: 3 rows; primary_key_unique: 2 rows"
    assert report.error_message(detail=True).startswith("row_schema: 3 rows (3 of 7 rows violate")
    assert [r.rule for r in report.failed_rules] == ["row_schema", "primary_key_unique"]


def test_report_to_validation_result_success_and_failed():
    table = table_of(clean_rows())
    ok = check(table).to_validation_result(tags={"team": "core"}, idempotency_key="k1")
    assert (ok.status, ok.record_count, ok.schema_version, ok.error_message) == ("success", 6, "1", None)
    assert ok.key == KEY and ok.run_id == RUN_ID and ok.tags == {"team": "core"} and ok.idempotency_key == "k1"
    rows = clean_rows()
    rows[0]["metrics_cost_micros"] = -1
    bad = check(table_of(rows)).to_validation_result()
    assert bad.status == "failed" and bad.error_message == "cost_non_negative: 1 row" and bad.tags is None


def test_report_json_is_serialisable_and_complete():
    rows = clean_rows()
    rows[0]["metrics_conversions"] = float("nan")
    rows[1]["campaign_status"] = "X"
    doc = json.loads(json.dumps(check(table_of(rows)).to_json(), allow_nan=False))
    assert doc["passed"] is False and doc["error_message"] == "row_schema: 1 row"
    assert [r["rule"] for r in doc["rules"]] == list(RULES)
    assert doc["logical_date"] == "2026-11-01" and doc["record_count"] == 6
    assert doc["rules"][2]["samples"][0]["row"] == 1


def test_report_needs_structural_rules_to_pass():
    results = tuple(
        RuleResult.skip(r, "unreadable") if r != "metadata_consistency" else RuleResult.ok(r) for r in RULES
    )
    report = ValidationReport(KEY, RUN_ID, "1", 0, results)
    assert not report.passed and report.failed_rules == ()
    assert report.error_message() == "schema: skipped (unreadable)"
    with pytest.raises(ValueError):
        RuleResult("schema", passed=True, skipped=True)
    with pytest.raises(ValueError):
        ValidationReport(KEY, RUN_ID, "1", 0, tuple(reversed(results)))


# --------------------------------------------------------------------------- compiling row schemas


@pytest.mark.parametrize(
    "schema, fragment",
    [
        ({"type": "object", "properties": {"metrics_clicks": {"multipleOf": 2}}}, "unsupported keyword(s) multipleOf"),
        ({"type": "object", "properties": {"campaign_name": {"format": "email"}}}, "format 'email' is not supported"),
        ({"type": "object", "properties": {"nope": {"type": "string"}}}, "nope, which are not columns"),
        ({"type": "object", "properties": {"campaign_name": {"type": "strnig"}}}, "not a valid JSON Schema"),
        ({"type": "object", "properties": {"campaign_name": {"pattern": "(?=a)b"}}}, "not a valid RE2 regex"),
        ({"type": "object", "properties": {"campaign_name": {"type": "array"}}}, "type array never matches"),
        ({"type": "object", "allOf": [{}]}, "unsupported top-level keyword(s) allOf"),
        ({"type": "array"}, "never matches a row"),
        ({"type": "object", "required": ["nope"]}, "requires nope"),
        ({"type": "object", "properties": {}, "additionalProperties": False}, "forbids additional properties"),
    ],
)
def test_compile_row_schema_rejects_what_it_cannot_evaluate(schema, fragment):
    with pytest.raises(RowSchemaError) as info:
        compile_row_schema(make_feed(row_schema=schema))
    assert info.value.code == INVALID_ARGUMENT and fragment in info.value.message


def test_row_schema_for_caches_by_content():
    from gridcat_pipelines.validation.json_schema import row_schema_for

    first = row_schema_for(make_feed())
    assert row_schema_for(make_feed()) is first
    changed = make_feed(row_schema={"type": "object", "properties": {"campaign_id": {"minimum": 2}}})
    assert row_schema_for(changed) is not first and len(row_schema_for(changed).checks) == 1
    with pytest.raises(RowSchemaError):
        row_schema_for(make_feed(row_schema={"type": "object", "properties": {"campaign_id": {"not": {}}}}))


def test_compiled_schema_keeps_jsonschema_semantics_on_edge_values():
    cols = (ColumnSpec("x.i", "int64"), ColumnSpec("x.f", "double"), ColumnSpec("x.b", "bool"))
    schema = {
        "type": "object",
        "properties": {
            "x_i": {"type": "integer", "exclusiveMinimum": 0.5, "maximum": 2**63, "enum": [1, 2.0, True, 2**70]},
            "x_f": {"type": ["integer", "null"], "minimum": 2**53 + 1, "enum": [0, 2**53 + 2, None]},
            "x_b": {"enum": [True, 0]},
        },
    }
    feed = make_feed(columns=cols, row_schema=schema, primary_key=("x_i",), rules=FeedRules(date_column="x_i"))
    compiled = compile_row_schema(feed)
    rows = [
        {"x_i": 1, "x_f": None, "x_b": True},  # ok
        {"x_i": 2, "x_f": 2.0**53 + 2, "x_b": True},  # ok: 2**53+2 >= 2**53+1, equals the int member
        {"x_i": 3, "x_f": None, "x_b": True},  # enum: 3 not in [1, 2]
        {"x_i": 1, "x_f": 2.0**53, "x_b": True},  # minimum: 2**53 < 2**53+1 (inexact as a double)
        {"x_i": 1, "x_f": -0.0, "x_b": True},  # minimum fails (-0.0 < 2**53+1)
        {"x_i": 1, "x_f": float("nan"), "x_b": True},  # NaN: not an integer
        {"x_i": 1, "x_f": None, "x_b": False},  # enum [True, 0]: False is not 0
        {"x_i": 0, "x_f": None, "x_b": None},  # exclusiveMinimum 0.5 and enum: null
    ]
    table = pa.Table.from_pylist(rows, schema=feed.arrow_schema())
    ours = compiled.violations(table).to_pylist()
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    assert ours == [not validator.is_valid(r) for r in rows]
    assert ours == [False, False, True, True, True, True, True, True]


# --------------------------------------------------------------------------- agreement with jsonschema

AGREE_COLUMNS = {"i": "int64", "f": "double", "s": "string", "t": "string", "d": "date32", "b": "bool"}
AGREE_FEED = FeedConfig(
    name="agreement",
    resource="agreement",
    gaql="",
    columns=tuple(ColumnSpec(name, type_) for name, type_ in AGREE_COLUMNS.items()),
    primary_key=("i",),
    schema_version="1",
    row_schema={},
)
ALPHABET = "abcXYZ09 -_é"
PATTERNS = [
    "^a",
    "b",
    "[0-9]{2}",
    "^[A-Z]",
    "c$",
    "^$",
    "a|Z",
    "(ab)+",
    "^.{2,3}$",
    "é",
    "[^a-z]",
    "^[0-9]{4}-[0-9]{2}",
    "X.*Z",
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
]
SPECIAL_DATES = [date(2020, 2, 29), date(1, 1, 1), date(9999, 12, 31), date(99, 3, 4)]
DATE_TEXTS = [
    "2021-02-29",
    "2020-02-29",
    "1900-02-29",
    "2000-02-29",
    "0000-01-01",
    "2020-13-01",
    "2020-00-10",
    "2020-01-32",
    "2020-04-31",
    "2020-1-01",
    "20200101",
    "2020-01-01x",
    " 2020-01-01",
    "٢٠٢٠-01-01",
    "9999-12-31",
    "0001-01-01",
]

ints = st.one_of(
    st.integers(-6, 6),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([2**53, 2**53 + 1, -(2**63), 2**63 - 1]),
)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-6, 6).map(float),
    st.sampled_from([-0.0, 0.5, 2.5, 1e300, 2.0**53, 2.0**63, float("inf"), float("nan")]),
)
texts = st.one_of(st.text(alphabet=ALPHABET, max_size=6), st.sampled_from(["ENABLED", "abc", ""]))
date_texts = st.one_of(
    st.dates().map(date.isoformat), st.sampled_from(DATE_TEXTS), st.text(alphabet="0123456789-", max_size=11)
)
dates = st.one_of(st.dates(), st.sampled_from(SPECIAL_DATES))
bools = st.booleans()


def mostly_set(values):
    """``values`` (which may be None) with an extra None branch weighted about one in eight."""
    return st.one_of(st.none(), *([values] * 7))


rows_strategy = st.fixed_dictionaries(
    {k: mostly_set(v) for k, v in {"i": ints, "f": floats, "s": texts, "t": date_texts, "d": dates, "b": bools}.items()}
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-6, 6),
    st.sampled_from([2**53 + 1, 2**63, -(2**63) - 1, 2**70]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([-0.0, 0.5, 2.0, 2.0**53, 1e300]),
    st.text(alphabet=ALPHABET, max_size=3),
    st.sampled_from(["ENABLED", "abc", "", "2020-02-29", "0099-03-04"]),
)
bounds = st.one_of(
    st.integers(-6, 6),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-10, max_value=10),
    st.sampled_from([0.5, -0.0, 2**53 + 1, 2.0**53, 2**63, -(2**63) - 1, 1e300, -1e300]),
)
SCALAR_TYPES = ["integer", "number", "string", "boolean", "null"]


NATURAL_TYPES = {
    "i": ["integer"],
    "f": ["number", "integer"],
    "s": ["string"],
    "t": ["string"],
    "d": ["string"],
    "b": ["boolean"],
}
# Values an enum/const may hold, biased towards each column's own values so rows often pass.
DOMAIN = {
    "i": st.one_of(st.integers(-6, 6), st.sampled_from([2.0, -0.0, 2**63 - 1, 2**53 + 1])),
    "f": st.one_of(st.integers(-6, 6), st.sampled_from([0, 0.0, -0.0, 0.5, 2.5, 2.0**53, 2**53 + 1, 1e300])),
    "s": st.one_of(st.text(alphabet=ALPHABET, max_size=2), st.sampled_from(["ENABLED", "abc", ""])),
    "t": st.sampled_from(DATE_TEXTS),
    "d": st.sampled_from([d.isoformat() for d in SPECIAL_DATES]),
    "b": st.booleans(),
}


@st.composite
def property_schemas(draw, column: str | None = None):
    """A property schema; with ``column``, biased so that about half of that column's values pass."""
    if draw(st.integers(0, 15)) == 0:
        return draw(st.booleans())
    domain = st.one_of(DOMAIN[column], json_scalars) if column else json_scalars
    prop: dict[str, Any] = {}
    rare = lambda n=5: draw(st.integers(0, n)) == 0  # noqa: E731 - each keyword in ~1/(n+1) of properties
    if draw(st.booleans()):
        if column and not rare(4):
            types = [draw(st.sampled_from(NATURAL_TYPES[column]))] + draw(
                st.lists(st.sampled_from(SCALAR_TYPES), max_size=2, unique=True)
            )
        else:
            types = draw(st.lists(st.sampled_from(SCALAR_TYPES), min_size=1, max_size=3, unique=True))
        types = list(dict.fromkeys(types))
        prop["type"] = types[0] if len(types) == 1 and draw(st.booleans()) else types
    if rare():
        prop["enum"] = draw(st.lists(domain, min_size=1, max_size=8)) + ([None] if draw(st.booleans()) else [])
    if rare(12):
        prop["const"] = draw(domain)
    for keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if rare():
            prop[keyword] = draw(bounds)
    for keyword in ("minLength", "maxLength"):
        if rare():
            prop[keyword] = draw(st.integers(0, 6))
    if rare():
        prop["pattern"] = draw(st.sampled_from(PATTERNS))
    if rare(3):
        prop["format"] = "date"
    return prop


@st.composite
def row_schemas(draw):
    properties = {}
    for name in AGREE_COLUMNS:
        if draw(st.booleans()):
            properties[name] = draw(property_schemas(name))
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if draw(st.booleans()):
        schema["additionalProperties"] = draw(property_schemas().filter(lambda s: s is not False))
    if draw(st.booleans()):
        schema["required"] = draw(st.lists(st.sampled_from(list(AGREE_COLUMNS)), unique=True))
    return schema


def single_keyword_schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """One schema per (property, keyword) of ``schema``, so each keyword alone decides a verdict."""
    out = []
    for name, prop in schema["properties"].items():
        items = prop.items() if isinstance(prop, dict) else [(None, prop)]
        for keyword, spec in items:
            sub = spec if keyword is None else {keyword: spec}
            out.append({"type": "object", "properties": {name: sub}})
    return out


def json_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row as jsonschema sees it: date32 values as ISO date strings."""
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in row.items()}


def assert_agrees(schema: dict[str, Any], rows: list[dict[str, Any]]) -> list[bool]:
    feed = replace(AGREE_FEED, row_schema=schema)
    compiled = compile_row_schema(feed)
    table = pa.Table.from_pylist(rows, schema=feed.arrow_schema())
    ours = compiled.violations(table).to_pylist()
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    for row, bad in zip(rows, ours, strict=True):
        assert bad == (not validator.is_valid(json_row(row))), (schema, row, list(validator.iter_errors(json_row(row))))
    assert compiled.evaluate(table).failing_rows == sum(ours)
    return ours


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=row_schemas(), rows=st.lists(rows_strategy, max_size=20))
def test_vectorised_row_schema_agrees_with_jsonschema(schema, rows):
    """Per row, the vectorised verdict equals Draft202012Validator(..., FormatChecker()).is_valid."""
    assert_agrees(schema, rows)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=row_schemas(), rows=st.lists(rows_strategy, min_size=1, max_size=20))
def test_each_keyword_alone_agrees_with_jsonschema(schema, rows):
    """The same, one keyword at a time: no keyword's edge case hides behind another's failure."""
    for single in single_keyword_schemas(schema):
        assert_agrees(single, rows)


EDGE_VALUES: dict[str, list[Any]] = {
    "i": [None, 0, 1, -1, 2, 3, 5, 2**53, 2**53 + 1, 2**63 - 1, -(2**63)],
    "f": [
        None,
        0.0,
        -0.0,
        0.5,
        1.0,
        2.0,
        2.5,
        -3.0,
        2.0**53,
        2.0**53 + 2,
        2.0**63,
        1e300,
        float("inf"),
        float("-inf"),
        float("nan"),
    ],
    "s": [None, "", "a", "ab", "abc", "ENABLED", "é", "éé", "2020-02-29", "aXZ", "0123", "Xb", "ab-ab"],
    "t": [None, *DATE_TEXTS],
    "d": [None, *SPECIAL_DATES, date(2020, 1, 1)],
    "b": [None, True, False],
}
EDGE_BOUNDS = [0, 1, 0.5, -0.0, 2.5, 2**53 + 1, 2.0**53, 2**63, 2**63 - 1, -(2**63) - 1, 1e300, -1e300]
EDGE_KEYWORDS: list[Any] = [
    True,
    False,
    *({"type": t} for t in SCALAR_TYPES),
    {"type": ["integer", "null"]},
    {"type": ["number", "string"]},
    {"type": ["boolean", "integer"]},
    {"enum": [0]},
    {"enum": [-0.0]},
    {"enum": [1, True]},
    {"enum": [False]},
    {"enum": [2.0, "abc", None]},
    {"enum": [2**53 + 1]},
    {"enum": [2**53]},
    {"enum": [2**63 - 1, 2**63]},
    {"enum": [float("1e300"), 5]},
    {"enum": ["2020-02-29", "0099-03-04", "é"]},
    {"enum": [[1], {"a": 1}]},
    {"const": 0},
    {"const": None},
    {"const": True},
    {"const": "ENABLED"},
    {"const": 2.0},
    *({kw: b} for kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") for b in EDGE_BOUNDS),
    *({kw: n} for kw in ("minLength", "maxLength") for n in (0, 1, 2, 3, 10)),
    *({"pattern": p} for p in PATTERNS),
    {"format": "date"},
]


@pytest.mark.parametrize("column", list(AGREE_COLUMNS))
def test_every_edge_keyword_agrees_with_jsonschema_on_edge_values(column):
    """Exhaustive over curated edge cases: each keyword alone, on every edge value of a column."""
    values = EDGE_VALUES[column]
    rows = [{c: (v if c == column else None) for c in AGREE_COLUMNS} for v in values]
    seen_both = 0
    for keyword in EDGE_KEYWORDS:
        ours = assert_agrees({"type": "object", "properties": {column: keyword}}, rows)
        seen_both += any(ours) and not all(ours)
    assert seen_both >= 5  # the matrix really separates values, it is not all-pass or all-fail


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(rows_strategy, min_size=1, max_size=12), chunk=st.integers(1, 5))
def test_row_schema_verdict_does_not_depend_on_chunking(rows, chunk):
    schema = {
        "type": "object",
        "properties": {
            "i": {"type": ["integer", "null"], "minimum": 0},
            "f": {"type": "integer"},
            "s": {"pattern": "a", "maxLength": 3},
            "t": {"format": "date"},
            "d": {"pattern": "-02-"},
        },
    }
    feed = replace(AGREE_FEED, row_schema=schema)
    table = pa.Table.from_pylist(rows, schema=feed.arrow_schema())
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=chunk), schema=table.schema)
    compiled = compile_row_schema(feed)
    assert compiled.violations(chunked).to_pylist() == compiled.violations(table).to_pylist()


# --------------------------------------------------------------------------- validate_run


class StandInSink:
    """TEST FIXTURE: a raw sink holding one table in memory, or raising what the real sink raises."""

    def __init__(self, table=None, metadata=None, error=None, problems=(), read_error=None):
        self.table, self.metadata, self.error = table, metadata, error
        self.problems, self.read_error = list(problems), read_error

    def read_metadata(self, key, run_id):
        if self.error:
            raise self.error
        return self.metadata

    def verify_files(self, metadata):
        return list(self.problems)

    def read_table(self, metadata):
        if self.read_error:
            raise self.read_error
        return self.table


def test_validate_run_reads_through_the_sink():
    table = table_of(clean_rows())
    report = validate_run(StandInSink(table, meta_for(table)), KEY, RUN_ID, FEED, CUSTOMER)
    assert report.passed and report.duration_s > 0


@pytest.mark.parametrize(
    "error",
    [failed_precondition("run 0190 of x is incomplete: no metadata.json"), not_found("no run 0190 of x")],
    ids=["incomplete", "missing"],
)
def test_validate_run_on_an_unreadable_run_gives_a_failed_report(error):
    report = validate_run(StandInSink(error=error), KEY, RUN_ID, FEED)
    assert outcomes(report) == {r: "failed" if r == "metadata_consistency" else "skipped" for r in RULES}
    assert report.result("metadata_consistency").message == error.message
    result = report.to_validation_result()
    assert result.status == "failed" and result.error_message == "metadata_consistency: 1 problem"
    assert result.record_count is None and result.schema_version is None


def test_validate_run_with_unreadable_files_reports_the_problems():
    table = table_of(clean_rows())
    sink = StandInSink(table, meta_for(table), problems=["part-00000.parquet: missing"], read_error=OSError("gone"))
    report = validate_run(sink, KEY, RUN_ID, FEED)
    assert failed(report) == {"metadata_consistency": 2}  # the sink's problem and the read error
    assert "part-00000.parquet: missing" in report.result("metadata_consistency").message
    assert report.record_count == 6 and report.schema_version == "1"


def test_validate_run_raises_only_for_bad_arguments():
    table = table_of(clean_rows())
    sink = StandInSink(table, meta_for(table))
    with pytest.raises(GridcatError) as info:
        validate_run(sink, KEY, "not-a-run-id", FEED)
    assert info.value.code == INVALID_ARGUMENT
    with pytest.raises(GridcatError):
        validate_run(sink, replace(KEY, query_name="ad_group"), RUN_ID, FEED)
    with pytest.raises(GridcatError):
        validate_run(sink, KEY, RUN_ID, FEED, replace(CUSTOMER, customer_id="999"))
    other = GridcatError(INVALID_ARGUMENT, "bad key")
    with pytest.raises(GridcatError):
        validate_run(StandInSink(error=other), KEY, RUN_ID, FEED)
    assert FAILED_PRECONDITION != NOT_FOUND


def test_validate_table_derives_the_key_from_a_customer():
    table = table_of(clean_rows())
    report = validate_table(table, meta_for(table), FEED, DAY, customer=CUSTOMER)
    assert report.key == KEY and report.passed
    with pytest.raises(GridcatError):
        validate_table(table, meta_for(table), FEED, DAY)
    with pytest.raises(GridcatError):
        validate_table(table, meta_for(table), FEED, DAY + timedelta(days=1), key=KEY)


def test_json_safe_samples_for_non_finite_numbers():
    from gridcat_pipelines.validation.samples import json_safe

    assert json_safe({"a": float("nan"), "b": float("-inf"), "c": [date(2020, 1, 1)], "d": b"\x00"}) == {
        "a": "NaN",
        "b": "-Infinity",
        "c": ["2020-01-01"],
        "d": "AA==",
    }
    assert math.isnan(float("nan"))


# --------------------------------------------------------------------------- the real feeds, sink and source

from gridcat_pipelines.feeds.loader import load_pipeline_config  # noqa: E402
from gridcat_pipelines.raw_sink import RawSink  # noqa: E402
from gridcat_pipelines.sources.faults import FAULT_RULE, applicable_kinds  # noqa: E402
from gridcat_pipelines.sources.synthetic import SyntheticSource  # noqa: E402

CONFIG = load_pipeline_config()
REAL_FEEDS = sorted(CONFIG.feeds)
REAL_DAY = date(2026, 3, 10)
FAULT_CASES = [
    (feed, kind) for feed in REAL_FEEDS for kind in applicable_kinds(CONFIG.feeds[feed]) if FAULT_RULE[kind] is not None
]


def write_and_validate(sink: RawSink, feed: FeedConfig, customer: CustomerConfig, table: pa.Table) -> ValidationReport:
    key = PartitionKey.parse(customer.customer_id, feed.name, REAL_DAY)
    meta = sink.write_run(
        key, [table], schema_version=feed.schema_version, schema=table.schema, source_name="synthetic"
    )
    return validate_run(sink, key, meta.run_id, feed, customer)


@pytest.mark.parametrize("feed_name", REAL_FEEDS)
def test_real_feed_row_schema_compiles(feed_name):
    compiled = compile_row_schema(CONFIG.feeds[feed_name])
    assert compiled.checks and {c.column for c in compiled.checks} <= {c.name for c in CONFIG.feeds[feed_name].columns}


@pytest.mark.parametrize("feed_name", REAL_FEEDS)
def test_clean_synthetic_data_passes_every_rule_for_every_customer(feed_name, tmp_path):
    feed, sink, source = CONFIG.feeds[feed_name], RawSink(str(tmp_path)), SyntheticSource(seed=11)
    rows = 0
    for customer in CONFIG.customers.values():
        table = source.table(feed, customer, REAL_DAY)
        report = write_and_validate(sink, feed, customer, table)
        assert outcomes(report) == {rule: "passed" for rule in rules_for(feed)}, report.to_json()
        assert report.to_validation_result().status == "success"
        rows += table.num_rows
    assert rows > 0


@pytest.mark.parametrize("feed_name, kind", FAULT_CASES)
def test_each_synthetic_fault_fails_exactly_its_rule(feed_name, kind, tmp_path):
    feed, sink, source = CONFIG.feeds[feed_name], RawSink(str(tmp_path)), SyntheticSource(seed=11)
    customer = CONFIG.customers["4567890123"]  # a EUR account: mixed_currency injects USD
    table = source.table(feed, customer, REAL_DAY, fault=kind)
    report = write_and_validate(sink, feed, customer, table)
    rule = FAULT_RULE[kind]
    assert [r.rule for r in report.failed_rules] == [rule], report.to_json()
    assert all(r.outcome in ("passed", "skipped") for r in report.rules if r.rule != rule)
    assert report.to_validation_result().error_message.startswith(f"{rule}: ")


def test_real_sink_incomplete_and_missing_runs_give_failed_reports(tmp_path):
    feed, customer = CONFIG.feeds["campaign"], CONFIG.customers["1234567890"]
    sink = RawSink(str(tmp_path))
    key = PartitionKey.parse(customer.customer_id, feed.name, REAL_DAY)
    table = SyntheticSource(seed=3).table(feed, customer, REAL_DAY)

    def crashing():
        yield table.to_batches()[0]
        raise RuntimeError("pull died")

    run_id = new_run_id()
    with pytest.raises(RuntimeError):
        sink.write_run(key, crashing(), schema_version=feed.schema_version, run_id=run_id)
    report = validate_run(sink, key, run_id, feed, customer)
    assert outcomes(report)["metadata_consistency"] == "failed"
    assert {r.outcome for r in report.rules if r.rule != "metadata_consistency"} == {"skipped"}
    assert "incomplete" in report.result("metadata_consistency").message
    assert report.to_validation_result().error_message == "metadata_consistency: 1 problem"

    missing = validate_run(sink, key, new_run_id(), feed, customer)
    assert "does not exist" in missing.result("metadata_consistency").message and not missing.passed


def test_real_sink_tampered_file_fails_metadata_and_still_runs_row_rules(tmp_path):
    import pyarrow.parquet as pq

    feed, customer = CONFIG.feeds["campaign"], CONFIG.customers["1234567890"]
    sink = RawSink(str(tmp_path))
    key = PartitionKey.parse(customer.customer_id, feed.name, REAL_DAY)
    table = SyntheticSource(seed=3).table(feed, customer, REAL_DAY)
    meta = sink.write_run(key, [table], schema_version=feed.schema_version)
    i = table.schema.get_field_index("metrics_cost_micros")
    cost = pa.array([-1] + table.column(i).to_pylist()[1:], pa.int64())
    pq.write_table(
        table.set_column(i, table.schema.field(i), cost), f"{sink.run_path(key, meta.run_id)}/{meta.files[0].path}"
    )
    report = validate_run(sink, key, meta.run_id, feed, customer)
    assert [r.rule for r in report.failed_rules] == ["metadata_consistency", "cost_non_negative"]
    assert (
        "sha256" in report.result("metadata_consistency").message
        or "bytes" in report.result("metadata_consistency").message
    )
    assert report.result("cost_non_negative").failing_rows == 1
