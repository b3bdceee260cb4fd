"""The Google Ads API source, offline: a fake client stands in for GoogleAdsClient (and,
when the google-ads package is installed, real GoogleAdsRow protobufs are mapped)."""

from __future__ import annotations

import importlib
import sys
from datetime import date
from types import SimpleNamespace

import pyarrow as pa
import pytest

from gridcat_pipelines.feeds.loader import load_pipeline_config
from gridcat_pipelines.sources.base import AdsSource, SourceError, TransientSourceError
from gridcat_pipelines.sources.google_ads import INSTALL_HINT, GoogleAdsApiSource, error_code

CONFIG = load_pipeline_config()
FEEDS = CONFIG.feeds
CUSTOMER = next(iter(CONFIG.customers.values()))
DAY = date(2026, 2, 3)


def enum(name: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, value=7)


def campaign_row(i: int, **overrides) -> SimpleNamespace:
    campaign = SimpleNamespace(
        id=1000 + i,
        name=f"Campaign {i}",
        status=enum("ENABLED"),
        advertising_channel_type=enum("SEARCH"),
        bidding_strategy_type=enum("TARGET_CPA"),
    )
    for key, value in overrides.items():
        setattr(campaign, key, value)
    return SimpleNamespace(
        customer=SimpleNamespace(id=int(CUSTOMER.customer_id), currency_code="USD"),
        campaign=campaign,
        segments=SimpleNamespace(date=DAY.isoformat(), device=enum("MOBILE")),
        metrics=SimpleNamespace(
            impressions=100 + i, clicks=5, cost_micros=1_230_000, conversions=1.5, conversions_value=42.25
        ),
    )


def response(rows) -> SimpleNamespace:
    return SimpleNamespace(results=list(rows))


class RpcError(Exception):
    """A grpc.RpcError look-alike: ``code()`` returns a status with a ``.name``."""

    def __init__(self, status: str):
        super().__init__(f"{status}: simulated")
        self.status = status

    def code(self):
        return SimpleNamespace(name=self.status)


class FakeService:
    """``search_stream`` plays a script: an exception to raise or responses to stream."""

    def __init__(self, *script):
        self.script = list(script)
        self.calls: list[dict] = []

    def search_stream(self, *, customer_id, query):
        self.calls.append({"customer_id": customer_id, "query": query})
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        return step() if callable(step) else iter(step)


class FakeClient:
    def __init__(self, service: FakeService):
        self.service = service
        self.services: list[str] = []

    def get_service(self, name: str):
        self.services.append(name)
        return self.service


def make_source(*script, **kwargs) -> tuple[GoogleAdsApiSource, FakeService, list[float]]:
    service = FakeService(*script)
    sleeps: list[float] = []
    source = GoogleAdsApiSource(
        "dev-token",
        "client-id",
        "client-secret",
        "refresh-token",
        client=FakeClient(service),
        sleep=sleeps.append,
        **kwargs,
    )
    return source, service, sleeps


def collect(batches) -> pa.Table:
    return pa.Table.from_batches(list(batches), schema=FEEDS["campaign"].arrow_schema())


# --------------------------------------------------------------------------- mapping


def test_sends_the_feed_query_for_the_customer():
    feed = FEEDS["campaign"]
    source, service, _ = make_source([response([campaign_row(1)])])
    assert isinstance(source, AdsSource) and source.name == "google_ads_api"
    list(source.fetch(feed, CUSTOMER, DAY))
    assert service.calls == [{"customer_id": CUSTOMER.customer_id, "query": feed.query_for(DAY)}]
    assert "segments.date = '2026-02-03'" in service.calls[0]["query"]
    assert source.client.services == ["GoogleAdsService"]


def test_rows_map_to_the_feed_columns_and_types():
    feed = FEEDS["campaign"]
    rows = [campaign_row(1), campaign_row(2, name=None, bidding_strategy_type=None)]
    source, _, _ = make_source([response(rows)])
    batches = list(source.fetch(feed, CUSTOMER, DAY))
    assert all(b.schema == feed.arrow_schema() for b in batches)
    table = collect(batches)
    assert table.to_pylist()[0] == {
        "customer_id": int(CUSTOMER.customer_id),
        "customer_currency_code": "USD",
        "campaign_id": 1001,
        "campaign_name": "Campaign 1",
        "campaign_status": "ENABLED",
        "campaign_advertising_channel_type": "SEARCH",
        "campaign_bidding_strategy_type": "TARGET_CPA",
        "segments_date": DAY,
        "segments_device": "MOBILE",
        "metrics_impressions": 101,
        "metrics_clicks": 5,
        "metrics_cost_micros": 1_230_000,
        "metrics_conversions": 1.5,
        "metrics_conversions_value": 42.25,
    }
    second = table.to_pylist()[1]
    assert second["campaign_name"] is None and second["campaign_bidding_strategy_type"] is None


def test_missing_attribute_reads_as_null():
    feed = FEEDS["campaign"]
    row = campaign_row(1)
    del row.campaign.name
    source, _, _ = make_source([response([row])])
    assert collect(source.fetch(feed, CUSTOMER, DAY))["campaign_name"].to_pylist() == [None]


def test_stream_batches_are_split_to_batch_rows():
    feed = FEEDS["campaign"]
    api = [response(campaign_row(10 * b + i) for i in range(4)) for b in range(3)]
    source, _, _ = make_source(api, batch_rows=3)
    batches = list(source.fetch(feed, CUSTOMER, DAY))
    assert [b.num_rows for b in batches] == [3, 1, 3, 1, 3, 1]
    assert collect(batches)["campaign_id"].to_pylist() == [1000 + 10 * b + i for b in range(3) for i in range(4)]


def test_empty_report_yields_nothing():
    source, _, _ = make_source([response([])])
    assert list(source.fetch(FEEDS["campaign"], CUSTOMER, DAY)) == []


def test_a_value_that_does_not_fit_is_a_source_error():
    row = campaign_row(1)
    row.segments.date = "03/02/2026"
    source, _, sleeps = make_source([response([row])])
    with pytest.raises(SourceError) as info:
        list(source.fetch(FEEDS["campaign"], CUSTOMER, DAY))
    assert not isinstance(info.value, TransientSourceError) and sleeps == []


# --------------------------------------------------------------------------- retries


def test_retries_quota_errors_with_backoff_then_succeeds():
    ok = [response([campaign_row(1)])]
    source, service, sleeps = make_source(
        RpcError("RESOURCE_EXHAUSTED"), RpcError("RESOURCE_EXHAUSTED"), ok, backoff_seconds=0.5
    )
    table = collect(source.fetch(FEEDS["campaign"], CUSTOMER, DAY))
    assert table.num_rows == 1
    assert len(service.calls) == 3
    assert sleeps == [0.5, 1.0]


@pytest.mark.parametrize("status", ["UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL"])
def test_gives_up_after_max_attempts(status):
    source, service, sleeps = make_source(RpcError(status), max_attempts=4)
    with pytest.raises(TransientSourceError, match="after 4 attempts"):
        list(source.fetch(FEEDS["campaign"], CUSTOMER, DAY))
    assert len(service.calls) == 4
    assert sleeps == [1.0, 2.0, 4.0]


def test_error_while_opening_the_stream_is_retried_too():
    def failing():
        raise RpcError("UNAVAILABLE")
        yield  # pragma: no cover

    source, service, sleeps = make_source(failing, [response([campaign_row(1)])])
    assert collect(source.fetch(FEEDS["campaign"], CUSTOMER, DAY)).num_rows == 1
    assert sleeps == [1.0] and len(service.calls) == 2


@pytest.mark.parametrize("status", ["INVALID_ARGUMENT", "PERMISSION_DENIED", "UNAUTHENTICATED"])
def test_non_retryable_errors_are_source_errors(status):
    source, service, sleeps = make_source(RpcError(status))
    with pytest.raises(SourceError) as info:
        list(source.fetch(FEEDS["campaign"], CUSTOMER, DAY))
    assert not isinstance(info.value, TransientSourceError)
    assert status in str(info.value)
    assert len(service.calls) == 1 and sleeps == []


def test_unclassified_exception_is_a_source_error():
    source, _, sleeps = make_source(RuntimeError("boom"))
    with pytest.raises(SourceError, match="RuntimeError"):
        list(source.fetch(FEEDS["campaign"], CUSTOMER, DAY))
    assert sleeps == []


@pytest.mark.parametrize("status,error", [("UNAVAILABLE", TransientSourceError), ("PERMISSION_DENIED", SourceError)])
def test_failure_after_rows_were_yielded_is_raised_not_retried(status, error):
    def stream():
        yield response([campaign_row(1), campaign_row(2)])
        raise RpcError(status)

    source, service, sleeps = make_source(stream, [response([campaign_row(3)])])
    got = []
    with pytest.raises(error) as info:
        for batch in source.fetch(FEEDS["campaign"], CUSTOMER, DAY):
            got.append(batch)
    assert "mid-stream" in str(info.value)
    assert sum(b.num_rows for b in got) == 2
    assert len(service.calls) == 1 and sleeps == []


def test_error_code_shapes():
    quota = SimpleNamespace(error_code=SimpleNamespace(quota_error=enum("RESOURCE_EXHAUSTED")))

    class GoogleAdsLike(Exception):
        def __init__(self, call, failure):
            super().__init__("google ads failure")
            self.error, self.call, self.failure = call, call, failure

    assert error_code(GoogleAdsLike(RpcError("INTERNAL"), SimpleNamespace(errors=[]))) == "INTERNAL"
    assert (
        error_code(GoogleAdsLike(RpcError("INVALID_ARGUMENT"), SimpleNamespace(errors=[quota]))) == "RESOURCE_EXHAUSTED"
    )

    class ApiCoreLike(Exception):
        code = 429
        grpc_status_code = SimpleNamespace(name="RESOURCE_EXHAUSTED")

    assert error_code(ApiCoreLike()) == "RESOURCE_EXHAUSTED"

    class TransportError(Exception):  # google.auth.exceptions.TransportError look-alike
        pass

    assert error_code(TransportError("token endpoint unreachable")) == "UNAVAILABLE"
    assert error_code(ConnectionResetError()) == "UNAVAILABLE"
    assert error_code(TimeoutError()) == "DEADLINE_EXCEEDED"
    assert error_code(ValueError("x")) is None


# --------------------------------------------------------------------------- the client


def test_client_is_built_lazily_on_first_fetch(monkeypatch):
    service = FakeService([response([campaign_row(1)])])
    built: list[int] = []

    def build(self):
        built.append(1)
        return FakeClient(service)

    monkeypatch.setattr(GoogleAdsApiSource, "_build_client", build)
    source = GoogleAdsApiSource("dev", "id", "secret", "refresh", login_customer_id="111-222-3333")
    assert source.login_customer_id == "1112223333"
    stream = source.fetch(FEEDS["campaign"], CUSTOMER, DAY)
    assert built == []  # neither constructing nor calling fetch builds it
    assert sum(b.num_rows for b in stream) == 1
    list(source.fetch(FEEDS["campaign"], CUSTOMER, DAY))
    assert built == [1]
    assert "secret" not in repr(source) and "refresh" not in repr(source)


def test_token_endpoint_outage_while_building_is_retried(monkeypatch):
    class TransportError(Exception):
        pass

    service = FakeService([response([campaign_row(1)])])
    outcomes = [TransportError("accounts.google.com unreachable"), FakeClient(service)]

    def build(self):
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(GoogleAdsApiSource, "_build_client", build)
    sleeps: list[float] = []
    source = GoogleAdsApiSource("dev", "id", "secret", "refresh", sleep=sleeps.append)
    assert sum(b.num_rows for b in source.fetch(FEEDS["campaign"], CUSTOMER, DAY)) == 1
    assert sleeps == [1.0]


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.ads.googleads.client", None)  # import fails
    sleeps: list[float] = []
    source = GoogleAdsApiSource("dev", "id", "secret", "refresh", sleep=sleeps.append)
    with pytest.raises(SourceError) as info:
        list(source.fetch(FEEDS["campaign"], CUSTOMER, DAY))
    assert INSTALL_HINT in str(info.value) and "pip install 'gridcat[google-ads]'" == INSTALL_HINT
    assert sleeps == []


# --------------------------------------------------------------------------- real protobuf rows


def _google_ads_service_types():
    pytest.importorskip("google.ads.googleads")
    for version in range(40, 15, -1):
        try:
            return version, importlib.import_module(
                f"google.ads.googleads.v{version}.services.types.google_ads_service"
            )
        except ImportError:
            continue
    pytest.skip("no Google Ads API version module found")


def test_maps_a_real_google_ads_row():
    version, types = _google_ads_service_types()
    enums = importlib.import_module(f"google.ads.googleads.v{version}.enums.types.campaign_status")
    device = importlib.import_module(f"google.ads.googleads.v{version}.enums.types.device")
    row = types.GoogleAdsRow()
    row.customer.id = int(CUSTOMER.customer_id)
    row.customer.currency_code = "USD"
    row.campaign.id = 987654321
    row.campaign.name = "Brand | Search | US"
    row.campaign.status = enums.CampaignStatusEnum.CampaignStatus.PAUSED
    row.campaign.advertising_channel_type = 2  # SEARCH
    row.segments.date = DAY.isoformat()
    row.segments.device = device.DeviceEnum.Device.TABLET
    row.metrics.impressions = 1200
    row.metrics.clicks = 34
    row.metrics.cost_micros = 56_780_000
    row.metrics.conversions = 2.5
    row.metrics.conversions_value = 99.0
    # bidding_strategy_type left unset: a nullable column reads it as null
    source, _, _ = make_source([types.SearchGoogleAdsStreamResponse(results=[row])])
    (record,) = collect(source.fetch(FEEDS["campaign"], CUSTOMER, DAY)).to_pylist()
    assert record == {
        "customer_id": int(CUSTOMER.customer_id),
        "customer_currency_code": "USD",
        "campaign_id": 987654321,
        "campaign_name": "Brand | Search | US",
        "campaign_status": "PAUSED",
        "campaign_advertising_channel_type": "SEARCH",
        "campaign_bidding_strategy_type": None,
        "segments_date": DAY,
        "segments_device": "TABLET",
        "metrics_impressions": 1200,
        "metrics_clicks": 34,
        "metrics_cost_micros": 56_780_000,
        "metrics_conversions": 2.5,
        "metrics_conversions_value": 99.0,
    }


def test_maps_real_rows_of_every_feed():
    _, types = _google_ads_service_types()
    for feed in FEEDS.values():
        row = types.GoogleAdsRow()
        row.customer.id = int(CUSTOMER.customer_id)
        row.segments.date = DAY.isoformat()
        source, _, _ = make_source([types.SearchGoogleAdsStreamResponse(results=[row])])
        table = pa.Table.from_batches(list(source.fetch(feed, CUSTOMER, DAY)))
        assert table.schema == feed.arrow_schema()
        record = table.to_pylist()[0]
        assert record["customer_id"] == int(CUSTOMER.customer_id)
        assert record["segments_date"] == DAY
        for col in feed.columns:  # unset nullable fields are null, never "" or UNSPECIFIED
            if col.nullable:
                assert record[col.name] is None, (feed.name, col.name)
