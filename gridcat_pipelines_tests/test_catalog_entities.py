"""Catalog entities from the feed config, the customer-audit fixture, paging and YAML round trips."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from gridcat_pipelines.errors import INVALID_ARGUMENT, GridcatError
from gridcat_pipelines.facet_types import CatalogEntity, TargetType, open_catalog
from gridcat_pipelines.facet_types.feed_sync import build_entities, sync_entities
from gridcat_pipelines.facet_types.yaml_io import export_catalog, import_catalog, read_document
from gridcat_pipelines.feeds.loader import load_pipeline_config

FIXTURE = Path(__file__).parent / "fixtures" / "customer_audit.yaml"


@pytest.fixture(scope="module")
def config():
    return load_pipeline_config()


@pytest.fixture
def services(db_url):
    s = open_catalog(db_url)
    yield s
    s.close()


def test_entities_from_the_feed_config(config):
    entities = {e.id: e for e in build_entities(config)}
    by_type = {t: [e for e in entities.values() if e.type is t] for t in TargetType if t is not TargetType.ANY}
    assert [e.id for e in by_type[TargetType.CATALOG]] == ["gridcat"]
    assert [e.id for e in by_type[TargetType.SCHEMA]] == ["google_ads"]
    assert sorted(e.id for e in by_type[TargetType.TABLE]) == sorted(f"google_ads.{n}" for n in config.feeds)
    assert len(by_type[TargetType.ATTRIBUTE]) == sum(len(f.columns) + 2 for f in config.feeds.values())
    assert {"concept.spend", "concept.clicks", "concept.impressions", "concept.conversions", "concept.campaign"} <= {
        e.id for e in by_type[TargetType.CONCEPT]
    }

    cost = entities["google_ads.campaign.metrics_cost_micros"]
    assert cost.parent_id == "google_ads.campaign"
    assert cost.facets["structural"]["global"] == {
        "_type": "structural",
        "physicalName": "metrics_cost_micros",
        "arrowType": "int64",
        "nullable": False,
        "isPrimaryKey": False,
        "ordinal": 11,
        "sourceField": "metrics.cost_micros",
    }
    assert cost.facets["descriptive"]["global"]["concepts"] == ["concept.spend"]
    assert (
        "google_ads.campaign.metrics_cost_micros" in entities["concept.spend"].facets["concept"]["global"]["attributes"]
    )
    assert entities["google_ads.campaign.campaign_id"].facets["structural"]["global"]["isPrimaryKey"] is True
    status = entities["google_ads.campaign.campaign_status"].facets["value-mapping"]["global"]
    assert [v["value"] for v in status["values"]] == ["ENABLED", "PAUSED", "REMOVED"]
    assert "value-mapping" not in entities["google_ads.campaign.metrics_clicks"].facets

    def targets(table: str) -> set[str]:
        return {r["target"] for r in entities[f"google_ads.{table}"].facets["relation"]["global"]["relations"]}

    assert "google_ads.campaign" in targets("ad_group")
    assert "google_ads.ad_group" in targets("keyword_view")
    assert targets("account") == set()
    table = entities["google_ads.keyword_view"].facets["structural"]["global"]
    assert table["primaryKey"] == list(config.feeds["keyword_view"].primary_key)


def test_sync_is_idempotent_validates_and_removes_stale_entities(services, config):
    first = sync_entities(services.entities, config)
    total = len(build_entities(config))
    assert len(first.created) == total
    revisions = services.entities.repository.revisions()
    again = sync_entities(services.entities, config)
    assert (len(again.created), len(again.updated), len(again.unchanged)) == (0, 0, total)
    assert services.entities.repository.revisions() == revisions
    checked, issues = services.entities.validate()
    assert (checked, issues) == (total, [])

    smaller = replace(config, feeds={k: v for k, v in config.feeds.items() if k != "click_view"})
    report = sync_entities(services.entities, smaller)
    assert "google_ads.click_view" in report.deleted and "google_ads.click_view.click_view_gclid" in report.deleted
    assert services.entities.repository.get("google_ads.click_view") is None


def test_customer_audit_fixture_valid_content_saves(services):
    _, report = import_catalog(read_document(FIXTURE), services.catalog, services.entities)
    saved = services.entities.get("moneta.customers")
    assert report.created == ("moneta.customers",)
    assert saved.facets["customer-audit"]["global"]["status"] == "passed"
    assert saved.facets["structural"]["global"]["_type"] == "structural"  # injected
    assert services.entities.validate("moneta.customers") == (1, [])


@pytest.mark.parametrize(
    "change, path, fragment",
    [
        ({"status": None}, "$.status", "required"),
        ({"status": "approved"}, "$.status", "is not one of"),
        ({"lastAuditDate": "15/01/2026"}, "$.lastAuditDate", "is not a 'date'"),
        ({"lastAuditDate": "2026-02-30"}, "$.lastAuditDate", "is not a 'date'"),
    ],
)
def test_customer_audit_fixture_errors_carry_their_path(services, change, path, fragment):
    import_catalog({"facet-types": read_document(FIXTURE)["facet-types"]}, services.catalog)
    content = {"lastAuditDate": "2026-01-15", "auditor": "compliance-team", "status": "passed"}
    content = {k: v for k, v in {**content, **change}.items() if v is not None}
    entity = CatalogEntity(
        id="moneta.customers", type=TargetType.TABLE, name="customers", facets={"customer-audit": {"global": content}}
    )
    with pytest.raises(GridcatError) as err:
        services.entities.save(entity)
    assert err.value.code == INVALID_ARGUMENT
    assert [(d["path"], fragment in d["message"]) for d in err.value.details] == [(path, True)]
    assert services.entities.repository.get("moneta.customers") is None


def test_import_is_checked_before_anything_is_stored(services):
    doc = read_document(FIXTURE)
    doc["entities"][0]["facets"]["customer-audit"]["global"]["status"] = "bogus"
    with pytest.raises(GridcatError):
        import_catalog(doc, services.catalog, services.entities)
    assert services.catalog.get("customer-audit") is None


def test_yaml_export_import_round_trips(services, config, tmp_path, pg_or_sqlite_second_url):
    sync_entities(services.entities, config)
    import_catalog(read_document(FIXTURE), services.catalog, services.entities)
    exported = export_catalog(services.catalog, services.entities)
    text = yaml.safe_dump(exported, sort_keys=False)
    other = open_catalog(pg_or_sqlite_second_url)
    try:
        applied, report = import_catalog(yaml.safe_load(text), other.catalog, other.entities)
        assert len(report.created) == len(exported["entities"])
        assert export_catalog(other.catalog, other.entities) == exported
        assert other.entities.validate() == (len(exported["entities"]), [])
    finally:
        other.close()


@pytest.fixture
def pg_or_sqlite_second_url(tmp_path):
    from gridcat_pipelines.state import migrations
    from gridcat_pipelines.state.db import create_state_engine

    url = f"sqlite:///{tmp_path / 'second.db'}"
    engine = create_state_engine(url)
    migrations.upgrade(engine)
    engine.dispose()
    return url


def test_listing_pages_and_filters(services, config):
    sync_entities(services.entities, config)
    seen, token = [], None
    while True:
        page, token = services.entities.list(entity_type="TABLE", page_size=3, page_token=token)
        seen += [e.id for e in page]
        if not token:
            break
    assert seen == sorted(f"google_ads.{n}" for n in config.feeds)
    _, token = services.entities.list(entity_type="TABLE", page_size=3)
    with pytest.raises(GridcatError) as err:
        services.entities.list(entity_type="ATTRIBUTE", page_token=token)
    assert err.value.code == INVALID_ARGUMENT
    children, _ = services.entities.list(parent_id="google_ads.campaign", page_size=1000)
    assert len(children) == len(config.feeds["campaign"].columns) + 2


def test_disabling_an_optional_type_leaves_it_out_of_the_sync(services, config):
    sync_entities(services.entities, config)
    catalog = services.catalog
    catalog.update(catalog.require("value-mapping").with_changes(enabled=False))
    checked, issues = services.entities.validate()
    assert issues and {i.code for i in issues} == {"DISABLED_TYPE"}
    report = sync_entities(services.entities, config)
    assert report.updated and services.entities.validate()[1] == []
