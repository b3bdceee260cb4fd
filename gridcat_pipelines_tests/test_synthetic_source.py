"""The synthetic source: deterministic, realistic, schema-exact, and every injected fault
fails exactly the validation rule it is meant to fail (checked with a reference checker
written here from the rule definitions in feeds/models.py)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from jsonschema import Draft202012Validator

from gridcat_pipelines.errors import INVALID_ARGUMENT, GridcatError
from gridcat_pipelines.feeds.loader import load_pipeline_config
from gridcat_pipelines.feeds.models import FeedConfig
from gridcat_pipelines.sources.base import (
    AdsSource,
    SourceCrash,
    SourceError,
    TransientSourceError,
)
from gridcat_pipelines.sources.faults import (
    FAULT_KINDS,
    FAULT_RULE,
    WRONG_TYPES,
    FaultPlan,
    applicable_kinds,
    fault_target_column,
)
from gridcat_pipelines.sources.synthetic import INVALID_ENUM_VALUE, SyntheticSource

CONFIG = load_pipeline_config()
FEEDS = CONFIG.feeds
CUSTOMERS = list(CONFIG.customers.values())
BUSY = CUSTOMERS[:6]  # the last shipped customer is a mostly-dark sandbox account
DAY = date(2026, 2, 3)
DAYS = [DAY + timedelta(days=i) for i in range(0, 21, 5)]
METRICS = (
    "metrics_impressions",
    "metrics_clicks",
    "metrics_cost_micros",
    "metrics_conversions",
    "metrics_conversions_value",
)
ROW_FAULTS = [k for k in FAULT_KINDS if FAULT_RULE[k] is not None]


def collect(batches, feed: FeedConfig) -> pa.Table:
    batches = list(batches)
    if not batches:
        return feed.arrow_schema().empty_table()
    return pa.Table.from_batches(batches)


@cache
def _property_validator(feed_name: str, column: str) -> Draft202012Validator:
    schema = FEEDS[feed_name].row_schema["properties"][column]
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def failing_rules(table: pa.Table, feed: FeedConfig, day: date) -> set[str]:
    """The validation rules ``table`` fails as the partition ``day`` of ``feed``."""
    failed: set[str] = set()
    expected = feed.arrow_schema()
    if table.schema.names != expected.names or any(got.type != want.type for got, want in zip(table.schema, expected)):
        failed.add("schema")
    names = set(table.column_names)
    props = feed.row_schema["properties"]
    if feed.row_schema.get("additionalProperties") is False and names - set(props):
        failed.add("row_schema")
    for name in table.column_names:  # properties are independent: check distinct values
        if name in props:
            validator = _property_validator(feed.name, name)
            for value in pc.unique(table[name]).to_pylist():
                value = value.isoformat() if isinstance(value, date) else value
                if not validator.is_valid(value):
                    failed.add("row_schema")
                    break
    rules = feed.rules
    for col in rules.non_negative:
        if col in names and pc.any(pc.less(table[col], 0)).as_py():
            failed.add("cost_non_negative")
    if (
        rules.clicks_le_impressions
        and pc.any(pc.greater(table["metrics_clicks"], table["metrics_impressions"])).as_py()
    ):
        failed.add("clicks_le_impressions")
    if table.num_rows and not pc.all(pc.equal(table[rules.date_column], pa.scalar(day, pa.date32()))).as_py():
        failed.add("date_matches_partition")
    if any(table[col].null_count for col in rules.not_null):
        failed.add("ids_not_null")
    key = list(feed.primary_key)
    if table.group_by(key).aggregate([]).num_rows != table.num_rows:
        failed.add("primary_key_unique")
    if rules.currency_column and len(pc.unique(table[rules.currency_column])) > 1:
        failed.add("single_currency")
    return failed


@pytest.fixture(scope="module")
def source() -> SyntheticSource:
    return SyntheticSource(seed=11)


def test_implements_the_protocol(source):
    assert isinstance(source, AdsSource)
    assert source.name == "synthetic"


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("feed_name", list(FEEDS))
def test_same_inputs_give_identical_tables(feed_name):
    feed = FEEDS[feed_name]
    a, b = SyntheticSource(seed=5), SyntheticSource(seed=5)
    for customer in CUSTOMERS[:3]:
        for day in DAYS[:2]:
            first = collect(a.fetch(feed, customer, day), feed)
            assert first.equals(collect(b.fetch(feed, customer, day), feed))
            assert first.equals(collect(a.fetch(feed, customer, day), feed))


def test_different_seed_gives_different_data():
    feed, customer = FEEDS["campaign"], CUSTOMERS[0]
    one = collect(SyntheticSource(seed=1).fetch(feed, customer, DAY), feed)
    two = collect(SyntheticSource(seed=2).fetch(feed, customer, DAY), feed)
    assert not one.equals(two)
    other_day = collect(SyntheticSource(seed=1).fetch(feed, customer, DAY + timedelta(1)), feed)
    assert not one.equals(other_day)


def test_entities_are_stable_across_days(source):
    feed, customer = FEEDS["campaign"], CUSTOMERS[1]
    ids = [set(collect(source.fetch(feed, customer, d), feed)["campaign_id"].to_pylist()) for d in DAYS]
    everything = set().union(*ids)
    assert 1 <= len(everything) <= 12
    names = collect(source.fetch(feed, customer, DAY), feed)
    by_id = dict(zip(names["campaign_id"].to_pylist(), names["campaign_name"].to_pylist()))
    later = collect(source.fetch(feed, customer, DAYS[-1]), feed)
    for cid, name in zip(later["campaign_id"].to_pylist(), later["campaign_name"].to_pylist()):
        assert by_id.get(cid, name) == name


def test_deterministic_across_processes():
    """hashlib, not hash(): another interpreter with another hash seed agrees."""
    code = (
        "import json, hashlib\n"
        "from datetime import date\n"
        "from gridcat_pipelines.feeds.loader import load_pipeline_config\n"
        "from gridcat_pipelines.sources.faults import FaultPlan\n"
        "from gridcat_pipelines.sources.synthetic import SyntheticSource\n"
        "c = load_pipeline_config(); f = c.feeds['keyword_view']\n"
        "cust = list(c.customers.values())[0]\n"
        "t = SyntheticSource(seed=3).table(f, cust, date(2026, 2, 3))\n"
        "plan = FaultPlan(seed=3, rate=0.5)\n"
        "faults = [plan.fault_for(cust.customer_id, f, date(2026, 2, d)) for d in range(1, 20)]\n"
        "print(json.dumps([hashlib.sha256(str(t.to_pydict()).encode()).hexdigest(), faults]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    feed, customer = FEEDS["keyword_view"], CUSTOMERS[0]
    table = SyntheticSource(seed=3).table(feed, customer, date(2026, 2, 3))
    plan = FaultPlan(seed=3, rate=0.5)
    faults = [plan.fault_for(customer.customer_id, feed, date(2026, 2, d)) for d in range(1, 20)]
    expected = [hashlib.sha256(str(table.to_pydict()).encode()).hexdigest(), faults]
    assert json.loads(out.stdout) == expected


# --------------------------------------------------------------------------- shape and realism


@pytest.mark.parametrize("feed_name", list(FEEDS))
def test_batches_have_the_feed_schema_and_size(feed_name):
    feed = FEEDS[feed_name]
    src = SyntheticSource(seed=11, batch_rows=40)
    seen_rows = 0
    for customer in BUSY[:3]:
        batches = list(src.fetch(feed, customer, DAY))
        for batch in batches:
            assert batch.schema == feed.arrow_schema()
            assert 0 < batch.num_rows <= 40
        table = collect(batches, feed)
        assert table.equals(src.table(feed, customer, DAY))
        seen_rows += table.num_rows
    assert seen_rows > 0


@pytest.mark.parametrize("feed_name", list(FEEDS))
def test_clean_partitions_pass_every_rule(source, feed_name):
    feed = FEEDS[feed_name]
    for customer in CUSTOMERS:
        for day in DAYS:
            table = source.table(feed, customer, day)
            assert failing_rules(table, feed, day) == set(), (customer.customer_id, day)
            if table.num_rows:
                assert set(table["customer_currency_code"].to_pylist()) == {customer.currency}
                assert set(table["customer_id"].to_pylist()) == {int(customer.customer_id)}


@pytest.mark.parametrize("feed_name", [n for n in FEEDS if n != "click_view"])
def test_metrics_are_consistent_and_never_all_zero(source, feed_name):
    feed = FEEDS[feed_name]
    tables = [source.table(feed, c, d) for c in BUSY for d in DAYS]
    table = pa.concat_tables(tables)
    assert table.num_rows > 0
    impressions = table["metrics_impressions"].to_numpy()
    clicks = table["metrics_clicks"].to_numpy()
    conversions = table["metrics_conversions"].to_numpy()
    assert (clicks <= impressions).all()
    assert (conversions <= clicks).all()
    assert table["metrics_cost_micros"].type == pa.int64()
    assert table["metrics_conversions"].type == pa.float64()
    all_zero = np.ones(table.num_rows, dtype=bool)
    for col in METRICS:
        all_zero &= table[col].to_numpy() == 0
    assert not all_zero.any()
    assert (table["metrics_cost_micros"].to_numpy() > 0).mean() > 0.3
    assert (conversions != np.round(conversions)).any()  # fractional conversions exist


def test_click_view_one_row_per_click(source):
    feed = FEEDS["click_view"]
    sizes = []
    for customer in CUSTOMERS:
        for day in DAYS:
            table = source.table(feed, customer, day)
            sizes.append(table.num_rows)
            gclids = table["click_view_gclid"].to_pylist()
            assert len(set(gclids)) == len(gclids)
            assert set(table["metrics_clicks"].to_pylist()) <= {1}
            assert table.num_rows <= 3000
    assert max(sizes) > 100


def test_scale_grows_volume():
    feed, customer = FEEDS["ad_group"], BUSY[0]
    small = SyntheticSource(seed=11, scale=0.5).table(feed, customer, DAY)
    big = SyntheticSource(seed=11, scale=4.0).table(feed, customer, DAY)
    small_imps = pc.sum(small["metrics_impressions"]).as_py()
    assert pc.sum(big["metrics_impressions"]).as_py() > 4 * small_imps
    busiest = max(CUSTOMERS, key=lambda c: SyntheticSource(seed=11).universe(c).volume)
    clicks = SyntheticSource(seed=11, scale=3.0).table(FEEDS["click_view"], busiest, DAY)
    assert 3000 < clicks.num_rows <= 9000


def test_cost_is_heavy_tailed(source):
    """The top 10% of campaign rows carry more than 40% of the cost."""
    feed = FEEDS["campaign"]
    cost = np.concatenate(
        [source.table(feed, c, d)["metrics_cost_micros"].to_numpy() for c in BUSY[:4] for d in DAYS[:3]]
    )
    cost = np.sort(cost)[::-1]
    top = cost[: int(np.ceil(len(cost) * 0.1))]
    assert top.sum() > 0.4 * cost.sum()


def test_some_days_are_legitimately_empty(source):
    feed = FEEDS["campaign"]
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(60)]
    empty = {c.customer_id: sum(source.table(feed, c, d).num_rows == 0 for d in days) for c in CUSTOMERS}
    share = sum(empty.values()) / (len(CUSTOMERS) * len(days))
    assert 0.01 < share < 0.3
    assert sum(1 for n in empty.values() if n) >= 2  # not a single odd customer
    customer = next(c for c in CUSTOMERS if empty[c.customer_id])
    dark = next(d for d in days if source.table(feed, customer, d).num_rows == 0)
    assert list(source.fetch(feed, customer, dark)) == []  # an empty day yields no batches
    for other in FEEDS.values():  # a dark day is dark in every feed
        assert source.table(other, customer, dark).num_rows == 0


def test_generation_is_fast():
    src = SyntheticSource(seed=11)
    busiest = max(CUSTOMERS, key=lambda c: src.universe(c).volume)
    for feed in FEEDS.values():
        src.table(feed, busiest, DAY)  # warm the entity cache
        best = min(_timed(lambda: list(src.fetch(feed, busiest, DAY))) for _ in range(3))
        assert best < 0.1, (feed.name, best)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --------------------------------------------------------------------------- faults


def _dark_day(source, customer) -> date:
    for i in range(200):
        day = date(2026, 1, 1) + timedelta(days=i)
        if source.table(FEEDS["campaign"], customer, day).num_rows == 0:
            return day
    raise AssertionError("no dark day found")


def _cases():
    for feed_name, feed in FEEDS.items():
        for kind in applicable_kinds(feed, tuple(ROW_FAULTS)):
            yield pytest.param(feed_name, kind, id=f"{feed_name}-{kind}")


@pytest.mark.parametrize("feed_name,kind", list(_cases()))
def test_each_fault_fails_exactly_its_rule(feed_name, kind):
    feed = FEEDS[feed_name]
    plain = SyntheticSource(seed=11)
    sandbox = CUSTOMERS[-1]
    keys = [(c, d) for c in BUSY[:3] for d in DAYS[:2]] + [(sandbox, _dark_day(plain, sandbox))]
    plan = FaultPlan(seed=0, rate=0.0, forced={(c.customer_id, feed_name, d.isoformat()): kind for c, d in keys})
    src = SyntheticSource(seed=11, faults=plan, batch_rows=64)
    for customer, day in keys:
        clean = plain.table(feed, customer, day)
        faulty = collect(src.fetch(feed, customer, day), feed)
        assert faulty.num_rows > 0, "a fault always has rows to show"
        assert failing_rules(faulty, feed, day) == {FAULT_RULE[kind]}, (customer.name, day)
        _assert_defect(kind, feed, customer, day, clean, faulty)
        healed = collect(src.fetch(feed, customer, day, attempt=1), feed)
        assert healed.equals(clean)  # faults only on the first pull
        assert failing_rules(healed, feed, day) == set()


def _assert_defect(kind, feed, customer, day, clean, faulty) -> None:
    target = fault_target_column(feed, kind)
    if kind == "missing_column":
        assert faulty.column_names == [n for n in feed.arrow_schema().names if n != target]
        assert target not in feed.primary_key
    elif kind == "wrong_type":
        assert faulty.schema.field(target).type == WRONG_TYPES[feed.column(target).type]
    elif kind == "negative_cost":
        assert 1 <= pc.sum(pc.less(faulty[target], 0)).as_py() <= 3
    elif kind == "wrong_date":
        wrong = faulty.filter(pc.not_equal(faulty["segments_date"], pa.scalar(day, pa.date32())))
        assert 1 <= wrong.num_rows <= 3
        assert set(wrong["segments_date"].to_pylist()) == {day - timedelta(days=1)}
    elif kind == "duplicate_primary_key":
        distinct = faulty.group_by(faulty.column_names).aggregate([]).num_rows
        assert 1 <= faulty.num_rows - distinct <= 3  # exact duplicates
    elif kind == "mixed_currency":
        counts = pc.value_counts(faulty[target]).to_pylist()
        assert len(counts) == 2
        assert {c["values"] for c in counts} >= {customer.currency}
    elif kind == "invalid_enum":
        assert 1 <= pc.sum(pc.equal(faulty[target], INVALID_ENUM_VALUE)).as_py() <= 3
        assert "enum" in feed.row_schema["properties"][target]
    if clean.num_rows and kind not in ("duplicate_primary_key", "missing_column", "wrong_type"):
        assert faulty.num_rows == clean.num_rows


def test_negative_cost_and_invalid_enum_do_not_apply_where_they_cannot():
    click_view = FEEDS["click_view"]
    assert "negative_cost" not in applicable_kinds(click_view)
    assert set(applicable_kinds(FEEDS["campaign"])) == set(FAULT_KINDS)
    plan = FaultPlan(
        seed=0, rate=0.0, forced={(CUSTOMERS[0].customer_id, "click_view", DAY.isoformat()): "negative_cost"}
    )
    with pytest.raises(GridcatError) as info:
        plan.fault_for(CUSTOMERS[0].customer_id, click_view, DAY)
    assert info.value.code == INVALID_ARGUMENT


def test_transient_error_raises_before_any_batch():
    feed, customer = FEEDS["campaign"], BUSY[0]
    plan = FaultPlan(seed=0, rate=0.0, forced={(customer.customer_id, feed.name, DAY.isoformat()): "transient_error"})
    src = SyntheticSource(seed=11, faults=plan)
    stream = src.fetch(feed, customer, DAY)
    with pytest.raises(TransientSourceError):
        next(iter(stream))
    assert collect(src.fetch(feed, customer, DAY, attempt=1), feed).num_rows > 0


@pytest.mark.parametrize("batch_rows", [1, 7, 500])
def test_crash_mid_write_yields_then_raises(batch_rows):
    feed = FEEDS["account"]
    customer = CUSTOMERS[-1]
    src_plain = SyntheticSource(seed=11)
    days = [_dark_day(src_plain, customer), DAY]
    plan = FaultPlan(
        seed=0, rate=0.0, forced={(customer.customer_id, feed.name, d.isoformat()): "crash_mid_write" for d in days}
    )
    src = SyntheticSource(seed=11, faults=plan, batch_rows=batch_rows)
    for day in days:
        got = []
        with pytest.raises(SourceCrash) as info:
            for batch in src.fetch(feed, customer, day):
                assert batch.schema == feed.arrow_schema()
                got.append(batch)
        assert isinstance(info.value, SourceError)
        assert len(got) >= 1
        assert all(0 < b.num_rows <= batch_rows for b in got)
        healed = list(src.fetch(feed, customer, day, attempt=2))
        assert healed == list(src_plain.fetch(feed, customer, day))


def test_fault_rate_matches_share_of_partitions():
    plan = FaultPlan(seed=42, rate=0.2)
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(60)]
    kinds = [plan.fault_for(c.customer_id, f, d) for c in CUSTOMERS for f in FEEDS.values() for d in days]
    share = sum(k is not None for k in kinds) / len(kinds)
    assert abs(share - 0.2) < 0.03
    assert set(kinds) - {None} == set(FAULT_KINDS)  # every kind gets drawn
    # same key, same answer; never after the first attempt
    feed, customer = FEEDS["campaign"], CUSTOMERS[0]
    first = [plan.fault_for(customer.customer_id, feed, d) for d in days]
    assert first == [plan.fault_for(customer.customer_id, feed, d) for d in days]
    assert all(plan.fault_for(customer.customer_id, feed, d, attempt=1) is None for d in days)
    assert not any(FaultPlan(seed=42, rate=0.0).fault_for(customer.customer_id, feed, d) for d in days)
    assert all(FaultPlan(seed=42, rate=1.0).fault_for(customer.customer_id, feed, d) for d in days)


def test_fault_kinds_can_be_restricted():
    plan = FaultPlan(seed=1, rate=1.0, kinds=("negative_cost", "wrong_date"))
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(30)]
    seen = {plan.fault_for(CUSTOMERS[0].customer_id, FEEDS["campaign"], d) for d in days}
    assert seen == {"negative_cost", "wrong_date"}
    only_click = {plan.fault_for(CUSTOMERS[0].customer_id, FEEDS["click_view"], d) for d in days}
    assert only_click == {"wrong_date"}


def test_forced_faults_win_and_are_normalised():
    customer = CUSTOMERS[0]
    cid = customer.customer_id
    hyphenated = f"{cid[:3]}-{cid[3:6]}-{cid[6:]}"
    plan = FaultPlan(seed=0, rate=0.0, forced={(hyphenated, "ad_group", DAY): "mixed_currency"})
    assert plan.fault_for(customer.customer_id, FEEDS["ad_group"], DAY) == "mixed_currency"
    assert plan.fault_for(cid, FEEDS["ad_group"], DAY.isoformat()) == "mixed_currency"
    assert plan.fault_for(customer.customer_id, FEEDS["ad_group"], DAY, attempt=1) is None
    assert plan.fault_for(customer.customer_id, FEEDS["campaign"], DAY) is None
    always = FaultPlan(
        seed=0,
        rate=1.0,
        kinds=("wrong_date",),
        forced={(customer.customer_id, "campaign", DAY.isoformat()): "invalid_enum"},
    )
    assert always.fault_for(customer.customer_id, FEEDS["campaign"], DAY) == "invalid_enum"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": -0.1},
        {"rate": 1.5},
        {"rate": "0.2"},
        {"rate": 0.1, "kinds": ("meteor_strike",)},
        {"rate": 0.1, "kinds": ()},
        {"rate": 0.1, "kinds": ("wrong_date", "wrong_date")},
        {"rate": 0.1, "forced": {("1234567890", "campaign", "2026-01-01"): "nope"}},
        {"rate": 0.1, "forced": {("12ab", "campaign", "2026-01-01"): "wrong_date"}},
        {"rate": 0.1, "forced": {("1234567890", "campaign", "2026-13-01"): "wrong_date"}},
    ],
)
def test_fault_plan_validates(kwargs):
    with pytest.raises(GridcatError) as info:
        FaultPlan(seed=0, **kwargs)
    assert info.value.code == INVALID_ARGUMENT


@pytest.mark.parametrize("kwargs", [{"batch_rows": 0}, {"scale": 0}, {"seed": "x"}])
def test_source_validates(kwargs):
    with pytest.raises(GridcatError):
        SyntheticSource(**kwargs)


def test_unknown_resource_is_a_source_error():
    feed = FEEDS["campaign"]
    odd = FeedConfig(
        name="ad_group_ad",
        resource="ad_group_ad",
        gaql=feed.gaql,
        columns=feed.columns,
        primary_key=feed.primary_key,
        schema_version="1",
        row_schema=feed.row_schema,
        rules=feed.rules,
    )
    with pytest.raises(SourceError):
        list(SyntheticSource().fetch(odd, CUSTOMERS[0], DAY))


def test_every_shipped_feed_is_generatable_and_an_unknown_resource_says_where_to_add_it():
    from dataclasses import replace

    from gridcat_pipelines.sources.synthetic import generation_gap
    from gridcat_pipelines.sources.synthetic_feeds import GENERATORS

    assert {feed.resource for feed in FEEDS.values()} <= set(GENERATORS)
    assert [generation_gap(feed) for feed in FEEDS.values()] == [None] * len(FEEDS)
    odd = replace(FEEDS["campaign"], name="mystery_report", resource="mystery_view")
    where, reason = generation_gap(odd)
    assert where == "resource" and "GENERATORS in gridcat_pipelines/sources/synthetic_feeds.py" in reason
    with pytest.raises(SourceError, match="GENERATORS in gridcat_pipelines/sources/synthetic_feeds.py"):
        SyntheticSource().table(odd, CUSTOMERS[0], DAY)
