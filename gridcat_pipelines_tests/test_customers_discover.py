"""``gridcat customers discover``: the client accounts under the manager account, from the
loopback Google Ads API (fake_google_ads.py) through the real client, and the merge into
the customer config that keeps hand-set tags."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from gridcat_pipelines.cli.main import main
from gridcat_pipelines.feeds.loader import DEFAULT_CUSTOMERS_PATH, load_customers
from gridcat_pipelines.sources.google_ads import GoogleAdsApiSource, SourceConfigError
from gridcat_pipelines.sources.google_ads_customers import (
    DISCOVERY_QUERY,
    discover_customers,
    merge_customers,
    merge_into_file,
)
from gridcat_pipelines.sources.google_ads_rows import stream_classes
from gridcat_pipelines_tests.fake_google_ads import DEFAULT_API_VERSION, loopback_google_ads

MANAGER = "1112223333"
# id, name, time zone, currency, status, manager, hidden, level
ACCOUNTS = [
    (MANAGER, "Northwind MCC", "America/New_York", "USD", "ENABLED", True, False, 0),
    ("2223334444", "Northwind EU MCC", "Europe/Berlin", "EUR", "ENABLED", True, False, 1),
    ("1234567890", "Northwind Outdoor US (new name)", "America/New_York", "USD", "ENABLED", False, False, 1),
    ("9876543210", "Tienda Ñandú 🛒", "Europe/Madrid", "EUR", "ENABLED", False, False, 2),
    ("5556667777", "Paused Brand", "America/Chicago", "USD", "SUSPENDED", False, False, 1),
    ("5551112222", "Old Shop", "America/Chicago", "USD", "CANCELED", False, False, 1),
    ("5558889999", "Closed Shop", "America/Chicago", "USD", "CLOSED", False, False, 1),
    ("5553334444", "Hidden Test", "UTC", "USD", "ENABLED", False, True, 1),
]


def customer_client_responses():
    _, response_class = stream_classes(DEFAULT_API_VERSION)
    response = response_class()
    for customer_id, name, zone, currency, status, manager, hidden, level in ACCOUNTS:
        client = response.results.add().customer_client
        client.client_customer = f"customers/{customer_id}"
        client.id = int(customer_id)
        client.descriptive_name = name
        client.time_zone = zone
        client.currency_code = currency
        client.status = client.DESCRIPTOR.fields_by_name["status"].enum_type.values_by_name[status].number
        client.manager = manager
        client.hidden = hidden
        client.level = level
    return [response]


def expected(*ids: str) -> list[dict]:
    rows = {a[0]: a for a in ACCOUNTS}
    return [
        {
            "customer_id": i,
            "name": rows[i][1],
            "time_zone": rows[i][2],
            "currency": rows[i][3],
            "status": rows[i][4],
            "manager": rows[i][5],
        }
        for i in sorted(ids)
    ]


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    with loopback_google_ads(tmp_path_factory.mktemp("google-ads")) as ads:
        yield ads


@pytest.fixture
def ads(loopback):
    loopback.reset()
    loopback.server.plan(MANAGER, DISCOVERY_QUERY, customer_client_responses())
    return loopback


# --------------------------------------------------------------------------- the library function


def test_discover_lists_the_pullable_client_accounts(ads):
    source = GoogleAdsApiSource(settings=ads.settings(login_customer_id=MANAGER))
    assert discover_customers(source) == expected("1234567890", "5556667777", "9876543210")
    (call,) = ads.server.calls
    assert call.customer_id == MANAGER and call.query == DISCOVERY_QUERY
    assert call.metadata["login-customer-id"] == MANAGER


def test_discover_includes_what_it_is_asked_to(ads):
    source = GoogleAdsApiSource(settings=ads.settings(login_customer_id=MANAGER))
    everything = discover_customers(source, MANAGER, include_managers=True, include_hidden=True, include_cancelled=True)
    assert everything == expected(*(a[0] for a in ACCOUNTS))
    managers = discover_customers(source, MANAGER, include_managers=True)
    assert [c["customer_id"] for c in managers if c["manager"]] == [MANAGER, "2223334444"]


def test_discover_takes_a_google_ads_client_too(ads):
    from google.ads.googleads.client import GoogleAdsClient

    client = GoogleAdsClient.load_from_dict(
        {**ads.settings(login_customer_id=MANAGER), "use_proto_plus": False}, version=DEFAULT_API_VERSION
    )
    assert discover_customers(client) == expected("1234567890", "5556667777", "9876543210")


def test_discover_needs_a_manager_account(ads):
    with pytest.raises(SourceConfigError, match="--login-customer-id or set GOOGLE_ADS_LOGIN_CUSTOMER_ID"):
        discover_customers(GoogleAdsApiSource(settings=ads.settings()))


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def cli(ads, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRIDCAT_HOME", str(tmp_path / "home"))
    for key in list(__import__("os").environ):
        if key.startswith("GOOGLE_ADS_"):
            monkeypatch.delenv(key)
    for key, value in ads.settings(login_customer_id=MANAGER).items():
        monkeypatch.setenv(f"GOOGLE_ADS_{key.upper()}", value)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["customers", "discover", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_cli_json(cli):
    code, out, _ = cli("--json")
    assert code == 0
    assert json.loads(out) == {"customers": expected("1234567890", "5556667777", "9876543210")}
    code, out, _ = cli("--json", "--include-cancelled", "--login-customer-id", "111-222-3333")
    assert [c["customer_id"] for c in json.loads(out)["customers"]] == [
        "1234567890",
        "5551112222",
        "5556667777",
        "5558889999",
        "9876543210",
    ]


def test_cli_text(cli):
    code, out, _ = cli()
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["customer_id", "name", "time_zone", "currency", "status", "manager"]
    assert any(line.split()[0] == "9876543210" and "Tienda Ñandú 🛒" in line for line in lines[1:])


def test_cli_write_merges_and_keeps_hand_set_tags(cli, tmp_path):
    path = tmp_path / "customers.yaml"
    shutil.copy(DEFAULT_CUSTOMERS_PATH, path)
    before = load_customers(path)
    code, out, _ = cli("--write", str(path))
    assert code == 0
    assert "wrote" in out and "2 added, 1 updated, 0 unchanged" in out and "kept, not under the manager" in out
    after = load_customers(path)
    assert list(after)[: len(before)] == list(before)  # existing entries keep their place
    us = after["1234567890"]
    assert us.name == "Northwind Outdoor US (new name)" and us.tags == before["1234567890"].tags
    assert after["2345678901"] == before["2345678901"]  # not under this manager: untouched
    new = after["9876543210"]
    assert (new.name, new.time_zone, new.currency, new.tags) == ("Tienda Ñandú 🛒", "Europe/Madrid", "EUR", {})
    assert path.read_text().startswith("# Google Ads customer accounts gridcat pulls")  # header comments kept

    code, out, _ = cli("--write", str(path), "--json")  # again: nothing new
    written = json.loads(out)["written"]
    assert written["added"] == [] and written["updated"] == [] and written["path"] == str(path)
    assert sorted(written["unchanged"]) == ["1234567890", "5556667777", "9876543210"]


def test_cli_without_credentials_says_what_to_set(cli, monkeypatch, capsys):
    monkeypatch.delenv("GOOGLE_ADS_DEVELOPER_TOKEN")
    monkeypatch.delenv("GOOGLE_ADS_JSON_KEY_FILE_PATH")
    code, out, err = cli("--json")
    error = json.loads(err.strip().splitlines()[-1])
    assert code == 1 and out == ""
    assert error["code"] == "FAILED_PRECONDITION"
    assert error["message"].startswith("Google Ads credentials missing: no developer token")
    assert "GOOGLE_ADS_JSON_KEY_FILE_PATH" in error["message"]


# --------------------------------------------------------------------------- merging


def test_merge_keeps_an_unchanged_file_byte_for_byte():
    text = Path(DEFAULT_CUSTOMERS_PATH).read_text()
    merged, summary = merge_customers(text, [])
    assert merged == text and summary["added"] == []


@pytest.mark.parametrize("name", ["yes", "123", "Brand: Search #1", "- dash", "'quoted' \"both\"", "Ünï 🛒", "a\nb"])
def test_merged_values_read_back_exactly(tmp_path, name):
    path = tmp_path / "customers.yaml"
    account = {"customer_id": "9876543210", "name": name, "time_zone": "Europe/Madrid", "currency": "EUR"}
    merge_into_file(path, [account])
    assert load_customers(path)["9876543210"].name == name.strip()
    tags = {"team": "a, b", "note": "{x}: y"}
    doc = yaml.safe_load(path.read_text())
    doc["customers"][0]["tags"] = tags
    path.write_text(yaml.safe_dump(doc))
    merge_into_file(path, [account])
    assert load_customers(path)["9876543210"].tags == tags


def test_a_merge_that_would_not_load_leaves_the_file_alone(tmp_path):
    path = tmp_path / "customers.yaml"
    shutil.copy(DEFAULT_CUSTOMERS_PATH, path)
    original = path.read_text()
    bad = {"customer_id": "9876543210", "name": "X", "time_zone": "Not/AZone", "currency": "EUR"}
    with pytest.raises(Exception, match="time_zone"):
        merge_into_file(path, [bad])
    assert path.read_text() == original and [p.name for p in tmp_path.iterdir()] == ["customers.yaml"]
