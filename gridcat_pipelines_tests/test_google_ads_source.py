"""The Google Ads API source without a network: a fake client stands in for GoogleAdsClient.

Its channel behaves like the library's: ``unary_stream(method, request_serializer,
response_deserializer)`` returns a callable whose call iterates responses, each serialized
and parsed back with the source's deserializer (the slim per-feed type), and raises
``grpc.RpcError``-shaped errors carrying a real ``GoogleAdsFailure`` in their trailing
metadata. The rows are real ``GoogleAdsRow`` protobufs of the pinned API version. The same
client over real gRPC and TLS is in test_google_ads_grpc.py.
"""

from __future__ import annotations

import sys
from datetime import date

import grpc
import pyarrow as pa
import pytest

from gridcat_pipelines.feeds.loader import load_pipeline_config
from gridcat_pipelines.sources.base import AdsSource, SourceError, TransientSourceError
from gridcat_pipelines.sources.google_ads import (
    CONFIGURATION_FILE_VARIABLE,
    DEFAULT_API_VERSION,
    INSTALL_HINT,
    SETTING_KEYS,
    GoogleAdsApiSource,
    SourceConfigError,
    google_ads_settings_from,
)
from gridcat_pipelines.sources.google_ads_errors import classify
from gridcat_pipelines.sources.google_ads_rows import stream_classes
from gridcat_pipelines_tests.fake_google_ads import failure, quota_failure

CONFIG = load_pipeline_config()
FEEDS = CONFIG.feeds
CUSTOMER = next(iter(CONFIG.customers.values()))
DAY = date(2026, 2, 3)
VERSION = DEFAULT_API_VERSION
FAILURE_KEY = f"google.ads.googleads.{VERSION}.errors.googleadsfailure-bin"
SECRET = "dev-token-SECRET-123"
SETTINGS = {
    "developer_token": SECRET,
    "client_id": "client-id.apps.googleusercontent.com",
    "client_secret": "client-SECRET-456",
    "refresh_token": "1//refresh-SECRET-789",
}
Request, Response = stream_classes(VERSION)
ROW = Response.DESCRIPTOR.fields_by_name["results"].message_type


def enum_number(path: str, name: str) -> int:
    desc, field = ROW, None
    for step in path.split("."):
        field = desc.fields_by_name.get(step) or desc.fields_by_name[step + "_"]
        desc = field.message_type
    return field.enum_type.values_by_name[name].number


def campaign_row(i: int, **overrides):
    row = Response().results.add()
    row.customer.id = int(CUSTOMER.customer_id)
    row.customer.currency_code = "USD"
    row.campaign.id = 1000 + i
    row.campaign.name = f"Campaign {i}"
    row.campaign.status = enum_number("campaign.status", "ENABLED")
    row.campaign.advertising_channel_type = enum_number("campaign.advertising_channel_type", "SEARCH")
    row.campaign.bidding_strategy_type = enum_number("campaign.bidding_strategy_type", "TARGET_CPA")
    row.segments.date = DAY.isoformat()
    row.segments.device = enum_number("segments.device", "MOBILE")
    row.metrics.impressions = 100 + i
    row.metrics.clicks = 5
    row.metrics.cost_micros = 1_230_000
    row.metrics.conversions = 1.5
    row.metrics.conversions_value = 42.25
    for path, value in overrides.items():
        target, name = row, path
        if "__" in path:
            first, name = path.split("__")
            target = getattr(row, first)
        if value is None:
            target.ClearField(name)
        else:
            setattr(target, name, value)
    return row


def response(rows) -> object:
    message = Response()
    for row in rows:
        message.results.add().CopyFrom(row)
    return message


class RpcError(grpc.RpcError, grpc.Call):
    """What gRPC raises for a failed call: a status, details and trailing metadata."""

    def __init__(self, status: grpc.StatusCode, details: str = "simulated", failure=None):
        super().__init__(f"{status.name}: {details}")
        self._status, self._details = status, details
        self._trailing = [(FAILURE_KEY, failure.SerializeToString())] if failure is not None else []

    def code(self):
        return self._status

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailing

    def initial_metadata(self):  # pragma: no cover - grpc.Call's other methods
        return ()

    def is_active(self):  # pragma: no cover
        return False

    def time_remaining(self):  # pragma: no cover
        return None

    def cancel(self):  # pragma: no cover
        return False

    def add_callback(self, callback):  # pragma: no cover
        return False


def quota(seconds: float | None = 30.0) -> RpcError:
    return RpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "quota", quota_failure(seconds))


class FakeStream:
    """A call's response iterator: serialized responses parsed with the source's deserializer."""

    def __init__(self, step, deserialize):
        self.cancelled = False
        self._error = step if isinstance(step, BaseException) else None
        self._items = iter(()) if self._error else step() if callable(step) else iter(step)
        self._deserialize = deserialize

    def __iter__(self):
        return self

    def __next__(self):
        if self._error is not None:
            raise self._error
        item = next(self._items)
        return self._deserialize(item.SerializeToString())

    def cancel(self):
        self.cancelled = True


class FakeChannel:
    """``unary_stream`` plays a script: per call, an exception to raise or responses to stream."""

    def __init__(self, script):
        self.script = list(script)
        self.calls: list[dict] = []
        self.streams: list[FakeStream] = []

    def unary_stream(self, method, request_serializer, response_deserializer):
        def call(request, timeout=None, metadata=None):
            parsed = Request.FromString(request_serializer(request))
            self.calls.append(
                {
                    "method": method,
                    "customer_id": parsed.customer_id,
                    "query": parsed.query,
                    "timeout": timeout,
                    "metadata": dict(metadata or ()),
                }
            )
            step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
            stream = FakeStream(step, response_deserializer)
            self.streams.append(stream)
            return stream

        return call


class FakeClient:
    def __init__(self, *script):
        self.channel = FakeChannel(script)
        self.services: list[tuple[str, str]] = []

    def get_service(self, name, version=None):
        self.services.append((name, version))
        transport = type("Transport", (), {"grpc_channel": self.channel})()
        return type("Service", (), {"transport": transport})()


def make_source(*script, **kwargs) -> tuple[GoogleAdsApiSource, FakeChannel, list[float]]:
    client = FakeClient(*script)
    sleeps: list[float] = []
    kwargs.setdefault("jitter", 0.0)
    source = GoogleAdsApiSource(settings=SETTINGS, client=client, sleep=sleeps.append, **kwargs)
    return source, client.channel, sleeps


def collect(batches, feed="campaign") -> pa.Table:
    return pa.Table.from_batches(list(batches), schema=FEEDS[feed].arrow_schema())


# --------------------------------------------------------------------------- mapping


def test_sends_the_feed_query_for_the_customer_on_the_pinned_version():
    feed = FEEDS["campaign"]
    source, channel, _ = make_source([response([campaign_row(1)])])
    assert isinstance(source, AdsSource) and source.name == "google_ads_api"
    list(source.fetch(feed, CUSTOMER, DAY))
    (call,) = channel.calls
    assert call["method"] == f"/google.ads.googleads.{VERSION}.services.GoogleAdsService/SearchStream"
    assert (call["customer_id"], call["query"]) == (CUSTOMER.customer_id, feed.query_for(DAY))
    assert "segments.date = '2026-02-03'" in call["query"]
    assert call["metadata"]["x-goog-request-params"] == f"customer_id={CUSTOMER.customer_id}"
    assert "gccl/" in call["metadata"]["x-goog-api-client"]
    assert call["timeout"] == 3600.0
    assert source.client.services == [("GoogleAdsService", VERSION)]


def test_rows_map_to_the_feed_columns_and_types():
    feed = FEEDS["campaign"]
    rows = [
        campaign_row(1, metrics__cost_micros=2**63 - 1, campaign__name="Zapatos 👟 | 靴 | Ünïcödé"),
        campaign_row(2, campaign__name=None, campaign__bidding_strategy_type=0),
        campaign_row(3, campaign__name=""),
    ]
    source, _, _ = make_source([response(rows)])
    batches = list(source.fetch(feed, CUSTOMER, DAY))
    assert all(b.schema == feed.arrow_schema() for b in batches)
    first, second, third = collect(batches).to_pylist()
    assert first == {
        "customer_id": int(CUSTOMER.customer_id),
        "customer_currency_code": "USD",
        "campaign_id": 1001,
        "campaign_name": "Zapatos 👟 | 靴 | Ünïcödé",
        "campaign_status": "ENABLED",
        "campaign_advertising_channel_type": "SEARCH",
        "campaign_bidding_strategy_type": "TARGET_CPA",
        "segments_date": DAY,
        "segments_device": "MOBILE",
        "metrics_impressions": 101,
        "metrics_clicks": 5,
        "metrics_cost_micros": 2**63 - 1,
        "metrics_conversions": 1.5,
        "metrics_conversions_value": 42.25,
    }
    # unset optional field and UNSPECIFIED enum: null in a nullable column; a served "" stays ""
    assert second["campaign_name"] is None and second["campaign_bidding_strategy_type"] is None
    assert third["campaign_name"] == ""


def test_a_non_nullable_column_reads_what_was_served():
    row = campaign_row(1, campaign__status=0, metrics__clicks=None)
    source, _, _ = make_source([response([row])])
    (record,) = collect(source.fetch(FEEDS["campaign"], CUSTOMER, DAY)).to_pylist()
    assert record["campaign_status"] == "UNSPECIFIED" and record["metrics_clicks"] == 0


def test_an_enum_number_the_descriptor_does_not_know_is_kept_as_its_number():
    source, _, _ = make_source([response([campaign_row(1, segments__device=987)])])
    (record,) = collect(source.fetch(FEEDS["campaign"], CUSTOMER, DAY)).to_pylist()
    assert record["segments_device"] == "987"


def test_every_feed_reads_real_rows_and_unset_nullable_fields_as_null():
    for feed in FEEDS.values():
        row = Response().results.add()
        row.customer.id = int(CUSTOMER.customer_id)
        row.segments.date = DAY.isoformat()
        source, _, _ = make_source([response([row])])
        table = pa.Table.from_batches(list(source.fetch(feed, CUSTOMER, DAY)))
        assert table.schema == feed.arrow_schema()
        (record,) = table.to_pylist()
        assert record["customer_id"] == int(CUSTOMER.customer_id) and record["segments_date"] == DAY
        for col in feed.columns:  # never "" or UNSPECIFIED where the API sent nothing
            if col.nullable:
                assert record[col.name] is None, (feed.name, col.name)


def test_stream_batches_are_split_to_batch_rows():
    api = [response(campaign_row(10 * b + i) for i in range(4)) for b in range(3)]
    source, _, _ = make_source(api, batch_rows=3)
    batches = list(source.fetch(FEEDS["campaign"], CUSTOMER, DAY))
    assert [b.num_rows for b in batches] == [3, 1, 3, 1, 3, 1]
    assert collect(batches)["campaign_id"].to_pylist() == [1000 + 10 * b + i for b in range(3) for i in range(4)]


@pytest.mark.parametrize("api", [[], [response([])]], ids=["no-response", "empty-response"])
def test_empty_report_yields_nothing(api):
    source, channel, _ = make_source(api)
    assert list(source.fetch(FEEDS["campaign"], CUSTOMER, DAY)) == []
    assert channel.streams[0].cancelled  # the call is always closed


def test_a_value_that_does_not_fit_is_a_source_error():
    source, _, sleeps = make_source([response([campaign_row(1, segments__date="03/02/2026")])])
    with pytest.raises(SourceError, match="segments.date") as info:
        list(source.fetch(FEEDS["campaign"], CUSTOMER, DAY))
    assert not isinstance(info.value, TransientSourceError) and sleeps == []


def test_a_feed_column_the_api_does_not_have_fails_before_any_call():
    import dataclasses

    from gridcat_pipelines.feeds.models import ColumnSpec

    feed = FEEDS["campaign"]
    bad = dataclasses.replace(feed, columns=(*feed.columns, ColumnSpec("campaign.no_such_field", "string")))
    source, channel, _ = make_source([response([campaign_row(1)])])
    with pytest.raises(SourceError, match="campaign.no_such_field does not exist in GoogleAdsRow"):
        source.fetch(bad, CUSTOMER, DAY)
    wrong_type = dataclasses.replace(feed, columns=(ColumnSpec("campaign.id", "string"),))
    with pytest.raises(SourceError, match="declared string but the API .* field is int64"):
        source.fetch(wrong_type, CUSTOMER, DAY)
    assert channel.calls == []


# --------------------------------------------------------------------------- retries


def test_a_quota_error_waits_the_delay_it_carries_then_succeeds():
    ok = [response([campaign_row(1)])]
    source, channel, sleeps = make_source(quota(30), quota(12.5), ok)
    assert collect(source.fetch(FEEDS["campaign"], CUSTOMER, DAY)).num_rows == 1
    assert len(channel.calls) == 3 and sleeps == [30.0, 12.5]


def test_a_quota_delay_beyond_the_wait_budget_fails_at_once_without_waiting():
    source, channel, sleeps = make_source(quota(86_400), max_quota_wait_seconds=600)
    with pytest.raises(SourceError) as info:
        source.fetch(FEEDS["campaign"], CUSTOMER, DAY)
    assert not isinstance(info.value, TransientSourceError)
    message = str(info.value)
    assert "86400 s" in message and "quota_error=RESOURCE_EXHAUSTED" in message and "rate_scope=DEVELOPER" in message
    assert sleeps == [] and len(channel.calls) == 1


def test_quota_waits_add_up_against_the_budget():
    source, channel, sleeps = make_source(quota(400), quota(400), max_quota_wait_seconds=600)
    with pytest.raises(SourceError, match="200 s left"):
        source.fetch(FEEDS["campaign"], CUSTOMER, DAY)
    assert sleeps == [400.0] and len(channel.calls) == 2


def test_a_quota_error_without_a_delay_backs_off():
    source, _, sleeps = make_source(quota(None), [response([campaign_row(1)])], backoff_seconds=0.5)
    assert collect(source.fetch(FEEDS["campaign"], CUSTOMER, DAY)).num_rows == 1
    assert sleeps == [0.5]


@pytest.mark.parametrize("status", ["UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "ABORTED"])
def test_transient_errors_back_off_then_give_up_as_a_plain_source_error(status):
    source, channel, sleeps = make_source(RpcError(getattr(grpc.StatusCode, status)), max_attempts=4)
    with pytest.raises(SourceError, match="gave up after 4 attempts") as info:
        source.fetch(FEEDS["campaign"], CUSTOMER, DAY)
    # not TransientSourceError: the retries were made here, Dagster must not multiply them
    assert not isinstance(info.value, TransientSourceError) and status in str(info.value)
    assert len(channel.calls) == 4 and sleeps == [1.0, 2.0, 4.0]


def test_backoff_is_capped_and_jittered():
    source, _, sleeps = make_source(
        RpcError(grpc.StatusCode.UNAVAILABLE), max_attempts=6, max_backoff_seconds=5, jitter=0.2
    )
    with pytest.raises(SourceError):
        source.fetch(FEEDS["campaign"], CUSTOMER, DAY)
    assert len(sleeps) == 5
    for got, nominal in zip(sleeps, [1, 2, 4, 5, 5]):
        assert nominal * 0.8 <= got <= nominal * 1.2


def test_non_retryable_errors_carry_the_google_ads_failure():
    bad = failure("query_error", "BAD_FIELD_NAME", "Unrecognized field 'campaign.nme'.", request_id="req-42")
    source, channel, sleeps = make_source(RpcError(grpc.StatusCode.INVALID_ARGUMENT, "bad", bad))
    with pytest.raises(SourceError) as info:
        source.fetch(FEEDS["campaign"], CUSTOMER, DAY)
    assert not isinstance(info.value, (TransientSourceError, SourceConfigError))
    assert str(info.value) == (
        f"campaign for {CUSTOMER.customer_id} on 2026-02-03: INVALID_ARGUMENT: "
        "query_error=BAD_FIELD_NAME: Unrecognized field 'campaign.nme'. [request_id=req-42]"
    )
    assert len(channel.calls) == 1 and sleeps == []


@pytest.mark.parametrize(
    "status,kind,code",
    [
        ("UNAUTHENTICATED", "authentication_error", "OAUTH_TOKEN_INVALID"),
        ("PERMISSION_DENIED", "authorization_error", "USER_PERMISSION_DENIED"),
    ],
)
def test_rejected_credentials_are_a_config_error_and_not_retried(status, kind, code):
    rejected = RpcError(getattr(grpc.StatusCode, status), "denied", failure(kind, code, "No."))
    source, channel, sleeps = make_source(rejected)
    with pytest.raises(SourceConfigError) as info:
        source.fetch(FEEDS["campaign"], CUSTOMER, DAY)
    message = str(info.value)
    assert info.value.code == status and f"{kind}={code}" in message and "\n" not in message
    assert "GOOGLE_ADS_DEVELOPER_TOKEN" in message and SECRET not in message
    with pytest.raises(SourceConfigError):  # remembered: no second call, no retry storm
        source.fetch(FEEDS["ad_group"], CUSTOMER, DAY)
    assert len(channel.calls) == 1 and sleeps == []


def test_an_unclassified_exception_is_a_source_error():
    source, _, sleeps = make_source(RuntimeError("boom"))
    with pytest.raises(SourceError, match="RuntimeError: boom"):
        source.fetch(FEEDS["campaign"], CUSTOMER, DAY)
    assert sleeps == []


def _breaks_after_first_response(error):
    def stream():
        yield response([campaign_row(1), campaign_row(2)])
        raise error

    return stream


def test_a_stream_that_breaks_mid_way_is_transient_and_not_retried_here():
    source, channel, sleeps = make_source(_breaks_after_first_response(RpcError(grpc.StatusCode.UNAVAILABLE)))
    got = []
    with pytest.raises(TransientSourceError) as info:
        for batch in source.fetch(FEEDS["campaign"], CUSTOMER, DAY):
            got.append(batch)
    assert "broke after 2 rows" in str(info.value) and "stays incomplete" in str(info.value)
    assert sum(b.num_rows for b in got) == 2
    assert len(channel.calls) == 1 and sleeps == [] and channel.streams[0].cancelled


def test_a_quota_error_mid_stream_waits_its_delay_before_handing_over_to_the_retry():
    source, _, sleeps = make_source(_breaks_after_first_response(quota(20)))
    with pytest.raises(TransientSourceError):
        list(source.fetch(FEEDS["campaign"], CUSTOMER, DAY))
    assert sleeps == [20.0]


def test_a_non_retryable_error_mid_stream_is_a_source_error():
    error = RpcError(grpc.StatusCode.INVALID_ARGUMENT, "bad", failure("request_error", "INVALID_PAGE_TOKEN", "x"))
    source, _, _ = make_source(_breaks_after_first_response(error))
    with pytest.raises(SourceError) as info:
        list(source.fetch(FEEDS["campaign"], CUSTOMER, DAY))
    assert not isinstance(info.value, TransientSourceError)
    assert "request_error=INVALID_PAGE_TOKEN" in str(info.value)


def test_secrets_are_masked_in_error_messages():
    leaky = failure("request_error", "UNKNOWN", f"developer token {SECRET} and {SETTINGS['refresh_token']}")
    source, _, _ = make_source(RpcError(grpc.StatusCode.INVALID_ARGUMENT, "x", leaky))
    with pytest.raises(SourceError) as info:
        source.fetch(FEEDS["campaign"], CUSTOMER, DAY)
    assert SECRET not in str(info.value) and SETTINGS["refresh_token"] not in str(info.value)
    assert "developer token *** and ***" in str(info.value)


# --------------------------------------------------------------------------- error shapes


def test_classify_reads_the_shapes_the_library_raises():
    from google.ads.googleads.errors import GoogleAdsException
    from google.ads.googleads.v26.errors.types.errors import GoogleAdsFailure
    from google.api_core import exceptions as core

    # ResourceExhausted from the generated client: the failure is in exc.response's trailing metadata
    call = quota(45)
    wrapped = core.ResourceExhausted("Resource has been exhausted", response=call)
    got = classify(wrapped, VERSION)
    assert (got.status, got.retryable, got.rejected, got.retry_delay) == ("RESOURCE_EXHAUSTED", True, False, 45.0)
    assert "retry_delay=45s" in got.detail

    # GoogleAdsException: the failure is already parsed (proto-plus)
    failure_pb = failure("authorization_error", "CUSTOMER_NOT_ENABLED", "The customer account is not enabled.")
    exc = GoogleAdsException(
        RpcError(grpc.StatusCode.PERMISSION_DENIED),
        None,
        GoogleAdsFailure.deserialize(failure_pb.SerializeToString()),
        "r1",
    )
    got = classify(exc, VERSION)
    assert (got.status, got.retryable, got.rejected) == ("PERMISSION_DENIED", False, True)
    assert "authorization_error=CUSTOMER_NOT_ENABLED" in got.detail

    # an internal error is transient even with a failure attached
    internal = RpcError(grpc.StatusCode.INTERNAL, "x", failure("internal_error", "TRANSIENT_ERROR", "try again"))
    assert classify(internal, VERSION).retryable

    class RefreshError(Exception):  # google.auth.exceptions.RefreshError look-alikes
        retryable = False

    class RetryableRefreshError(RefreshError):
        retryable = True

    class TransportError(Exception):
        pass

    assert classify(RefreshError("invalid_grant"), VERSION).rejected
    assert classify(RetryableRefreshError("503"), VERSION).retryable
    assert classify(TransportError("unreachable"), VERSION).retryable
    assert classify(ConnectionResetError(), VERSION).retryable
    assert classify(TimeoutError(), VERSION).status == "DEADLINE_EXCEEDED"
    assert not classify(ValueError("x"), VERSION).retryable


# --------------------------------------------------------------------------- settings and the client


def test_settings_from_the_environment_follow_the_library():
    from google.ads.googleads import config as library_config

    env = {
        "GOOGLE_ADS_DEVELOPER_TOKEN": "d",
        "GOOGLE_ADS_JSON_KEY_FILE_PATH": "/k.json",
        "GOOGLE_ADS_LOGIN_CUSTOMER_ID": "111-222-3333",
        "GOOGLE_ADS_CLIENT_ID": "",  # empty: not set
        "GOOGLE_ADS_USE_PROTO_PLUS": "true",  # ignored: always False here
        CONFIGURATION_FILE_VARIABLE: "/etc/google-ads.yaml",
        "UNRELATED": "x",
    }
    settings, configuration_file = google_ads_settings_from(env)
    assert settings == {"developer_token": "d", "json_key_file_path": "/k.json", "login_customer_id": "111-222-3333"}
    assert configuration_file == "/etc/google-ads.yaml"
    library = set(library_config._KEYS_ENV_VARIABLES_MAP) - {"use_proto_plus", "configuration_file_path"}
    assert set(SETTING_KEYS) == library
    assert all(f"GOOGLE_ADS_{k.upper()}" == library_config._KEYS_ENV_VARIABLES_MAP[k] for k in SETTING_KEYS)


def test_configuration_file_first_then_settings_and_never_proto_plus(tmp_path):
    path = tmp_path / "google-ads.yaml"
    path.write_text(
        "developer_token: from-file-token\nclient_id: file-id\nclient_secret: file-secret\n"
        "refresh_token: file-refresh\nlogin_customer_id: 111-222-3333\nuse_proto_plus: True\n"
    )
    source = GoogleAdsApiSource(settings={"developer_token": "from-settings-token"}, configuration_file=str(path))
    config = source.config()
    assert config["developer_token"] == "from-settings-token" and config["client_id"] == "file-id"
    assert config["use_proto_plus"] is False and config["login_customer_id"] == "1112223333"
    assert source.login_customer_id == "1112223333"
    for secret in ("from-settings-token", "file-secret", "file-refresh"):
        assert secret not in repr(source)
        assert source.redact(f"x {secret} y") == "x *** y"


@pytest.mark.parametrize(
    "settings,missing",
    [
        ({}, "no developer token; no OAuth or service account credentials"),
        ({"developer_token": "d"}, "no OAuth or service account credentials"),
        (
            {"developer_token": "d", "client_id": "i"},
            "OAuth client missing GOOGLE_ADS_CLIENT_SECRET+GOOGLE_ADS_REFRESH_TOKEN",
        ),
        ({"client_id": "i", "client_secret": "s", "refresh_token": "r"}, "no developer token"),
    ],
)
def test_missing_credentials_fail_with_one_line_naming_what_to_set(settings, missing, monkeypatch):
    built = []
    monkeypatch.setattr("google.ads.googleads.client.GoogleAdsClient.load_from_dict", lambda *a, **k: built.append(1))
    sleeps: list[float] = []
    source = GoogleAdsApiSource(settings=settings, sleep=sleeps.append)
    with pytest.raises(SourceConfigError) as info:
        source.fetch(FEEDS["campaign"], CUSTOMER, DAY)
    message = str(info.value)
    assert message.startswith(f"Google Ads credentials missing: {missing}: set GOOGLE_ADS_DEVELOPER_TOKEN and either")
    assert "GOOGLE_ADS_CONFIGURATION_FILE_PATH" in message and "\n" not in message
    assert info.value.code == "FAILED_PRECONDITION" and sleeps == [] and built == []


def test_an_unreadable_configuration_file_is_a_config_error(tmp_path):
    source = GoogleAdsApiSource(configuration_file=str(tmp_path / "nope.yaml"))
    with pytest.raises(SourceConfigError, match=r"GOOGLE_ADS_CONFIGURATION_FILE_PATH: cannot read .*nope.yaml"):
        source.fetch(FEEDS["campaign"], CUSTOMER, DAY)


def test_settings_the_library_rejects_are_a_config_error_without_network():
    source = GoogleAdsApiSource(settings={**SETTINGS, "login_customer_id": "12345"})
    with pytest.raises(SourceConfigError, match="rejected by the google-ads library: The specified login customer ID"):
        source.fetch(FEEDS["campaign"], CUSTOMER, DAY)


def test_client_is_built_lazily_on_first_fetch(monkeypatch):
    client = FakeClient([response([campaign_row(1)])])
    built: list[dict] = []

    def load_from_dict(config, version=None):
        built.append({**config, "version": version})
        return client

    monkeypatch.setattr("google.ads.googleads.client.GoogleAdsClient.load_from_dict", load_from_dict)
    source = GoogleAdsApiSource(settings={**SETTINGS, "login_customer_id": "111-222-3333"})
    assert built == []
    assert sum(b.num_rows for b in source.fetch(FEEDS["campaign"], CUSTOMER, DAY)) == 1
    list(source.fetch(FEEDS["campaign"], CUSTOMER, DAY))
    assert len(built) == 1
    assert built[0] == {**SETTINGS, "login_customer_id": "1112223333", "use_proto_plus": False, "version": VERSION}
    assert "SECRET" not in repr(source)


def test_token_endpoint_outage_while_building_is_retried_and_rejection_is_not(monkeypatch):
    from google.auth import exceptions as auth

    outcomes: list = [
        auth.TransportError("oauth2.googleapis.com unreachable"),
        FakeClient([response([campaign_row(1)])]),
    ]

    def load_from_dict(config, version=None):
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr("google.ads.googleads.client.GoogleAdsClient.load_from_dict", load_from_dict)
    sleeps: list[float] = []
    source = GoogleAdsApiSource(settings=SETTINGS, sleep=sleeps.append, jitter=0)
    assert sum(b.num_rows for b in source.fetch(FEEDS["campaign"], CUSTOMER, DAY)) == 1
    assert sleeps == [1.0]

    outcomes[:] = [auth.RefreshError("invalid_grant: Token has been expired or revoked.", retryable=False)]
    rejected = GoogleAdsApiSource(settings=SETTINGS, sleep=sleeps.append)
    with pytest.raises(SourceConfigError, match="UNAUTHENTICATED: OAuth token refresh failed: invalid_grant"):
        rejected.fetch(FEEDS["campaign"], CUSTOMER, DAY)
    assert sleeps == [1.0]


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.ads.googleads.client", None)  # import fails
    sleeps: list[float] = []
    source = GoogleAdsApiSource(settings=SETTINGS, sleep=sleeps.append)
    with pytest.raises(SourceConfigError) as info:
        source.fetch(FEEDS["campaign"], CUSTOMER, DAY)
    assert INSTALL_HINT in str(info.value) and INSTALL_HINT == "pip install 'gridcat[google-ads]'"
    assert sleeps == []


def test_arguments_are_checked():
    from gridcat_pipelines.errors import GridcatError

    for kwargs in ({"max_attempts": 0}, {"batch_rows": 0}, {"jitter": 1.5}, {"version": "26"}):
        with pytest.raises(GridcatError):
            GoogleAdsApiSource(**kwargs)
    with pytest.raises(TypeError):
        GoogleAdsApiSource("dev-token")  # keyword-only
