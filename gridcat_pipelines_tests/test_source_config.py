"""Choosing the Ads source (``GRIDCAT_SOURCE``) and what happens without Google Ads credentials:
the pull fails with one line that names what to set, and nothing is retried."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from gridcat_pipelines.cli.main import main
from gridcat_pipelines.config import Settings
from gridcat_pipelines.defs.ingestion.resources import AdsSourceResource
from gridcat_pipelines.defs.resources import build_resources
from gridcat_pipelines.errors import INVALID_ARGUMENT, GridcatError
from gridcat_pipelines.sources.google_ads import DEFAULT_API_VERSION

PULL = ["pull", "--customer", "123-456-7890", "--query", "campaign", "--date", "2026-11-20", "--json"]


def test_gridcat_source_is_synthetic_or_google_ads():
    assert Settings.from_env({}).source == "synthetic"
    assert Settings.from_env({"GRIDCAT_SOURCE": "google_ads"}).source == "google_ads"
    with pytest.raises(GridcatError) as err:
        Settings.from_env({"GRIDCAT_SOURCE": "bing_ads"})
    assert err.value.code == INVALID_ARGUMENT and "GRIDCAT_SOURCE" in err.value.message


def test_google_ads_settings_reach_the_resource_by_name_only(monkeypatch, tmp_path):
    monkeypatch.setenv("GRIDCAT_HOME", str(tmp_path))
    monkeypatch.setenv("GRIDCAT_SOURCE", "google_ads")
    monkeypatch.setenv("GOOGLE_ADS_DEVELOPER_TOKEN", "a-developer-token")
    monkeypatch.setenv("GOOGLE_ADS_LOGIN_CUSTOMER_ID", "1112223333")
    settings = Settings.from_env()
    assert "a-developer-token" not in repr(settings)
    source = build_resources(settings)["ads_source"]
    assert source.kind == "google_ads"
    assert isinstance(source.developer_token, dg.EnvVar) and source.developer_token == "GOOGLE_ADS_DEVELOPER_TOKEN"
    assert source.login_customer_id == "GOOGLE_ADS_LOGIN_CUSTOMER_ID"
    assert source.api_version == ""
    assert AdsSourceResource(kind="google_ads").source.version == DEFAULT_API_VERSION, "pinned unless configured"
    monkeypatch.setenv("GRIDCAT_GOOGLE_ADS_API_VERSION", "v25")
    assert build_resources(Settings.from_env())["ads_source"].api_version == "v25"
    assert AdsSourceResource(kind="google_ads", api_version="v25").source.version == "v25"


def test_every_google_ads_setting_has_a_field_on_the_ads_source_resource(monkeypatch, tmp_path):
    from gridcat_pipelines.config import GOOGLE_ADS_VARIABLES

    monkeypatch.setenv("GRIDCAT_HOME", str(tmp_path))
    for name in GOOGLE_ADS_VARIABLES.values():
        monkeypatch.setenv(name, "set")
    resource = build_resources(Settings.from_env())["ads_source"]
    assert all(getattr(resource, key) == name for key, name in GOOGLE_ADS_VARIABLES.items())


def test_a_pull_without_credentials_fails_once_with_one_line_naming_what_to_set(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRIDCAT_HOME", str(tmp_path))
    monkeypatch.delenv("GRIDCAT_DB_URL", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("GRIDCAT_SOURCE", "google_ads")
    for name in [k for k in list(__import__("os").environ) if k.startswith("GOOGLE_ADS_")]:
        monkeypatch.delenv(name)
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    code = main(PULL)
    _, err = capsys.readouterr()
    assert code == 1
    error = json.loads(err.strip().splitlines()[-1])
    assert "GOOGLE_ADS_DEVELOPER_TOKEN" in error["message"], error
    failed_lines = [line for line in err.splitlines() if line.strip().startswith("failed:")]
    assert len(failed_lines) == 1 and "GOOGLE_ADS_DEVELOPER_TOKEN" in failed_lines[0], err
    assert "Traceback" not in err and "Stack Trace" not in err
    # no retry storm: the raw step ran once
    instance = dg.DagsterInstance.from_config(str(tmp_path / "dagster"))
    (run,) = instance.get_runs()
    restarts = [
        e
        for e in instance.all_logs(run.run_id)
        if e.dagster_event and e.dagster_event.event_type_value == "STEP_RESTARTED"
    ]
    assert restarts == []
    instance.dispose()


def test_a_feed_the_synthetic_source_cannot_make_loads_when_google_ads_pulls(tmp_path):
    import yaml

    from gridcat_pipelines.config import REPO_ROOT
    from gridcat_pipelines.feeds.loader import ConfigError

    doc = yaml.safe_load((REPO_ROOT / "config" / "google_apis.yaml").read_text())
    extra = dict(doc["feeds"][0])
    extra["name"], extra["resource"] = "mystery_report", "mystery_view"
    extra["gaql"] = extra["gaql"].replace("FROM campaign", "FROM mystery_view")
    doc["feeds"].append(extra)
    feeds = tmp_path / "google_apis.yaml"
    feeds.write_text(yaml.safe_dump(doc, sort_keys=False))
    env = {"GRIDCAT_HOME": str(tmp_path), "GRIDCAT_FEEDS_CONFIG": str(feeds)}
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env).pipeline_config()
    assert "GENERATORS" in err.value.reason
    config = Settings.from_env({**env, "GRIDCAT_SOURCE": "google_ads"}).pipeline_config()
    assert "mystery_report" in config.feeds
    assert (
        build_resources(Settings.from_env({**env, "GRIDCAT_SOURCE": "google_ads"}))[
            "pipeline_config"
        ].config.feeds.keys()
        == config.feeds.keys()
    )
