"""The real ``GoogleAdsClient`` against a loopback Google Ads API (fake_google_ads.py).

Real gRPC ``GoogleAdsService/SearchStream`` over TLS on 127.0.0.1 with a self-signed
certificate made here; the library's own service-account flow
(``GOOGLE_ADS_JSON_KEY_FILE_PATH``) gets its access token from a loopback token endpoint,
so nothing leaves the machine. Every shipped feed is pulled into raw runs through
``pull_raw_run``, and the rows land exactly as served: enums, nulls, unicode, 64-bit micros,
an empty day; plus a quota error with a retry delay, a stream that breaks mid-way and
rejected credentials.
"""

from __future__ import annotations

from datetime import date

import grpc
import pyarrow as pa
import pytest

from gridcat_pipelines.feeds.loader import load_pipeline_config
from gridcat_pipelines.ingest import partition_key, pull_raw_run
from gridcat_pipelines.raw_sink import RawSink
from gridcat_pipelines.sources.base import SourceError, TransientSourceError
from gridcat_pipelines.sources.google_ads import GoogleAdsApiSource, SourceConfigError
from gridcat_pipelines.sources.synthetic import SyntheticSource
from gridcat_pipelines.validation.validator import validate_run
from gridcat_pipelines_tests.fake_google_ads import (
    ACCESS_TOKEN,
    DEVELOPER_TOKEN,
    Abort,
    loopback_google_ads,
    quota_failure,
    responses_for,
)

CONFIG = load_pipeline_config()
FEEDS = CONFIG.feeds
CUSTOMER = next(iter(CONFIG.customers.values()))
DAY = date(2026, 2, 3)
MANAGER = "1112223333"
UNICODE = "Zapatillas 🏃‍♀️ | 靴 | «Ünïcödé» | עברית"
INT64_MAX = 2**63 - 1


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    with loopback_google_ads(tmp_path_factory.mktemp("google-ads")) as ads:
        yield ads


@pytest.fixture
def ads(loopback):
    loopback.reset()
    return loopback


def make_source(ads, sleeps: list[float] | None = None, **settings) -> GoogleAdsApiSource:
    return GoogleAdsApiSource(
        settings=ads.settings(login_customer_id=MANAGER, **settings),
        sleep=(sleeps if sleeps is not None else []).append,
        jitter=0,
    )


def synthetic_table(feed) -> pa.Table:
    batches = list(SyntheticSource(seed=3).fetch(feed, CUSTOMER, DAY))
    return pa.Table.from_batches(batches, schema=feed.arrow_schema())


def edge_rows(feed, table: pa.Table) -> pa.Table:
    """Two more rows: every nullable column null; free text in unicode and int64-max micros."""
    base = table.slice(0, 1).to_pylist()[0]
    nulls = {**base, **{c.name: None for c in feed.columns if c.nullable}}
    extreme = dict(base)
    properties = feed.row_schema["properties"]
    for col in feed.columns:
        free_text = (
            col.type == "string" and "enum" not in properties[col.name] and "pattern" not in properties[col.name]
        )
        if free_text and not col.name.endswith(("time_zone", "gclid")):
            extreme[col.name] = UNICODE
        if col.type == "int64" and "micros" in col.field:
            extreme[col.name] = INT64_MAX
    return pa.Table.from_pylist([nulls, extreme], schema=feed.arrow_schema())


def read_run(sink: RawSink, meta) -> pa.Table:
    return sink.read_table(meta)


# --------------------------------------------------------------------------- every feed


def test_every_feed_lands_in_the_raw_run_exactly_as_served(ads, tmp_path):
    source = make_source(ads)
    sink = RawSink(str(tmp_path / "raw"))
    for feed in FEEDS.values():
        synthetic = synthetic_table(feed)
        served = pa.concat_tables([synthetic, edge_rows(feed, synthetic)])
        ads.server.plan(CUSTOMER.customer_id, feed.query_for(DAY), responses_for(feed, served, rows_per_response=7))
        meta = pull_raw_run(source, sink, feed, CUSTOMER, DAY)
        got = read_run(sink, meta)
        assert got.schema == feed.arrow_schema(), feed.name
        assert got.equals(served), feed.name
        assert meta.record_count == served.num_rows and meta.source_name == "google_ads_api"
        assert any(v is None for v in got.to_pylist()[-2].values()) or not any(c.nullable for c in feed.columns)
    assert len(ads.token.grants) == 1  # one token for all the pulls (the client is built once)
    assert {c.customer_id for c in ads.server.calls} == {CUSTOMER.customer_id}


def test_runs_pulled_from_the_api_pass_validation(ads, tmp_path):
    source = make_source(ads)
    sink = RawSink(str(tmp_path / "raw"))
    for feed in FEEDS.values():
        ads.server.plan(CUSTOMER.customer_id, feed.query_for(DAY), responses_for(feed, synthetic_table(feed)))
        meta = pull_raw_run(source, sink, feed, CUSTOMER, DAY)
        report = validate_run(sink, partition_key(feed, CUSTOMER, DAY), meta.run_id, feed, CUSTOMER)
        assert report.passed, (feed.name, [r.message for r in report.rules if not r.passed and not r.skipped])


def test_the_library_sends_the_credentials_and_headers(ads, tmp_path):
    feed = FEEDS["campaign"]
    ads.server.plan(CUSTOMER.customer_id, feed.query_for(DAY), responses_for(feed, synthetic_table(feed)))
    pull_raw_run(make_source(ads), RawSink(str(tmp_path)), feed, CUSTOMER, DAY)
    (call,) = ads.server.calls
    assert call.metadata["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert call.metadata["developer-token"] == DEVELOPER_TOKEN
    assert call.metadata["login-customer-id"] == MANAGER
    assert "gccl/34.0.0" in call.metadata["x-goog-api-client"] and " pb/" in call.metadata["x-goog-api-client"]
    (grant,) = ads.token.grants
    assert grant["scope"] == "https://www.googleapis.com/auth/adwords"


def test_a_google_ads_yaml_works_like_the_variables(ads, tmp_path):
    feed = FEEDS["account"]
    served = synthetic_table(feed)
    ads.server.plan(CUSTOMER.customer_id, feed.query_for(DAY), responses_for(feed, served))
    path = tmp_path / "google-ads.yaml"
    path.write_text(
        "".join(f"{k}: {v}\n" for k, v in ads.settings(login_customer_id=MANAGER).items()) + "use_proto_plus: True\n"
    )
    source = GoogleAdsApiSource(configuration_file=str(path))
    sink = RawSink(str(tmp_path / "raw"))
    assert read_run(sink, pull_raw_run(source, sink, feed, CUSTOMER, DAY)).equals(served)


def test_an_empty_day_is_a_complete_run_without_rows(ads, tmp_path):
    feed = FEEDS["click_view"]
    ads.server.plan(CUSTOMER.customer_id, feed.query_for(DAY), [ads.server.response_class()])
    sink = RawSink(str(tmp_path))
    meta = pull_raw_run(make_source(ads), sink, feed, CUSTOMER, DAY)
    assert meta.record_count == 0
    table = read_run(sink, meta)
    assert table.num_rows == 0 and table.schema == feed.arrow_schema()


# --------------------------------------------------------------------------- failures


def test_a_quota_error_waits_its_retry_delay_then_pulls(ads, tmp_path):
    feed = FEEDS["keyword_view"]
    served = synthetic_table(feed)
    quota = Abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "Resource has been exhausted", quota_failure(7.5))
    ads.server.plan(CUSTOMER.customer_id, feed.query_for(DAY), [quota], responses_for(feed, served))
    sleeps: list[float] = []
    sink = RawSink(str(tmp_path))
    meta = pull_raw_run(make_source(ads, sleeps), sink, feed, CUSTOMER, DAY)
    assert sleeps == [7.5] and len(ads.server.calls) == 2
    assert read_run(sink, meta).equals(served)
    assert len(sink.list_runs(partition_key(feed, CUSTOMER, DAY), include_incomplete=True)) == 1


def test_a_stream_that_breaks_mid_way_leaves_an_incomplete_run_and_a_retry_makes_a_new_one(ads, tmp_path):
    feed = FEEDS["search_term_view"]
    served = synthetic_table(feed)
    responses = responses_for(feed, served, rows_per_response=5)
    assert len(responses) >= 3
    broken = [*responses[:2], Abort(grpc.StatusCode.UNAVAILABLE, "Connection reset by peer")]
    ads.server.plan(CUSTOMER.customer_id, feed.query_for(DAY), broken, responses)
    sleeps: list[float] = []
    source = make_source(ads, sleeps)
    sink = RawSink(str(tmp_path))
    key = partition_key(feed, CUSTOMER, DAY)
    with pytest.raises(TransientSourceError, match="UNAVAILABLE: Connection reset by peer") as info:
        pull_raw_run(source, sink, feed, CUSTOMER, DAY)
    assert "broke after 10 rows" in str(info.value) and sleeps == []
    (incomplete,) = sink.list_runs(key, include_incomplete=True)
    assert not incomplete.complete and sink.list_runs(key) == []
    # what the asset's retry policy does next: a new pull, a new run
    meta = pull_raw_run(source, sink, feed, CUSTOMER, DAY, retry_number=1)
    assert meta.run_id != incomplete.run_id and read_run(sink, meta).equals(served)
    assert [r.run_id for r in sink.list_runs(key)] == [meta.run_id]
    assert len(sink.list_runs(key, include_incomplete=True)) == 2


def test_a_rejected_developer_token_fails_with_one_clear_line_and_no_retry(ads, tmp_path):
    feed = FEEDS["campaign"]
    ads.server.plan(CUSTOMER.customer_id, feed.query_for(DAY), responses_for(feed, synthetic_table(feed)))
    sleeps: list[float] = []
    source = make_source(ads, sleeps, developer_token="wrong-developer-token")
    sink = RawSink(str(tmp_path))
    for _ in range(2):
        with pytest.raises(SourceConfigError) as info:
            pull_raw_run(source, sink, feed, CUSTOMER, DAY)
    message = str(info.value)
    assert info.value.code == "UNAUTHENTICATED" and "\n" not in message
    assert "authentication_error=DEVELOPER_TOKEN_INVALID" in message and "GOOGLE_ADS_DEVELOPER_TOKEN" in message
    assert "wrong-developer-token" not in message and "wrong-developer-token" not in repr(source)
    assert len(ads.server.calls) == 1 and sleeps == []
    assert sink.list_runs(partition_key(feed, CUSTOMER, DAY), include_incomplete=True) == []  # no run started


def test_credentials_the_token_endpoint_rejects_fail_before_any_call(ads, tmp_path):
    ads.token.reject = True
    sleeps: list[float] = []
    sink = RawSink(str(tmp_path))
    with pytest.raises(SourceConfigError, match="UNAUTHENTICATED: OAuth token refresh failed: invalid_grant"):
        pull_raw_run(make_source(ads, sleeps), sink, FEEDS["campaign"], CUSTOMER, DAY)
    assert ads.server.calls == [] and sleeps == []
    assert sink.list_runs(partition_key(FEEDS["campaign"], CUSTOMER, DAY), include_incomplete=True) == []


def test_an_api_error_names_the_google_ads_failure(ads, tmp_path):
    # nothing planned for this customer: the fake answers INVALID_ARGUMENT with a QueryError
    other = CONFIG.customers[list(CONFIG.customers)[1]]
    with pytest.raises(SourceError) as info:
        pull_raw_run(make_source(ads), RawSink(str(tmp_path)), FEEDS["campaign"], other, DAY)
    assert not isinstance(info.value, TransientSourceError)
    message = str(info.value)
    assert message.startswith(f"campaign for {other.customer_id} on 2026-02-03: INVALID_ARGUMENT: ")
    assert "query_error=BAD_RESOURCE_TYPE_IN_FROM_CLAUSE: no such report here [request_id=req-" in message


def test_no_token_reaches_the_logs(ads, tmp_path):
    import logging
    import time

    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Collect(logging.DEBUG)
    library = logging.getLogger("google.ads.googleads.client")  # logs each request with its headers
    level = library.level
    library.setLevel(logging.DEBUG)
    library.addHandler(handler)
    ours = logging.getLogger("gridcat_pipelines.sources.google_ads")
    ours.addHandler(handler)
    try:
        other = CONFIG.customers[list(CONFIG.customers)[1]]  # nothing planned: the call fails, the library logs it
        source = make_source(ads)
        with pytest.raises(SourceError) as info:
            pull_raw_run(source, RawSink(str(tmp_path)), FEEDS["campaign"], other, DAY)
        deadline = time.monotonic() + 5
        while not any("Request made" in r for r in records) and time.monotonic() < deadline:
            time.sleep(0.01)  # logged from gRPC's callback thread
    finally:
        library.setLevel(level)
        library.removeHandler(handler)
        ours.removeHandler(handler)
    logged = "\n".join(records)
    assert '"developer-token": "REDACTED"' in logged  # the library's own request log, masked
    for secret in (DEVELOPER_TOKEN, ACCESS_TOKEN):
        assert secret not in logged and secret not in str(info.value) and secret not in repr(source)
