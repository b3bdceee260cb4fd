"""``gridcat facet-types`` and ``gridcat entities``: spellings, JSON shapes, error codes, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridcat_pipelines.cli.main import main

FIXTURE = Path(__file__).parent / "fixtures" / "customer_audit.yaml"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def cli(request, tmp_path, monkeypatch, capsys):
    """``gridcat`` in-process on a fresh migrated store (SQLite and PostgreSQL)."""
    monkeypatch.setenv("GRIDCAT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("GRIDCAT_FEEDS_CONFIG", raising=False)
    monkeypatch.delenv("GRIDCAT_CUSTOMERS_CONFIG", raising=False)
    if request.param == "postgresql":
        monkeypatch.setenv("GRIDCAT_DB_URL", request.getfixturevalue("pg_url"))
    else:
        monkeypatch.delenv("GRIDCAT_DB_URL", raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    assert run("db", "upgrade")[0] == 0
    return run


def _error(stderr: str) -> dict:
    return json.loads(stderr.strip().splitlines()[-1])


def test_facet_types_list_get_apply_delete(cli):
    code, out, _ = cli("facet-types", "list", "--json")
    listed = json.loads(out)["facetTypes"]
    assert code == 0 and [d["typeKey"] for d in listed] == [
        "concept",
        "descriptive",
        "relation",
        "structural",
        "value-mapping",
    ]

    code, out, _ = cli("facet-types", "get", "structural", "--json")
    d = json.loads(out)
    assert code == 0 and list(d) == [
        "typeKey",
        "mandatory",
        "enabled",
        "displayName",
        "description",
        "applicableTo",
        "version",
        "contentSchema",
        "createdAt",
        "updatedAt",
        "createdBy",
        "updatedBy",
        "revision",
    ]
    assert (d["mandatory"], d["enabled"], d["applicableTo"]) == (True, True, ["TABLE", "ATTRIBUTE"])

    code, out, _ = cli("facet-types", "apply", "-f", str(FIXTURE), "--json")
    applied = json.loads(out)
    assert code == 0 and applied["applied"] == [{"typeKey": "customer-audit", "outcome": "created", "revision": 1}]
    assert applied["entities"]["created"] == 1
    code, out, _ = cli("facet-types", "apply", "-f", str(FIXTURE), "--json")
    assert json.loads(out)["applied"][0]["outcome"] == "unchanged"
    code, out, _ = cli("facet-types", "get", "customer-audit", "--json")
    assert json.loads(out)["contentSchema"]["required"] == ["lastAuditDate", "status"]

    code, _, err = cli("facet-types", "delete", "customer-audit", "--expected-revision", "9")
    assert code == 1 and _error(err)["code"] == "FAILED_PRECONDITION"
    code, out, _ = cli("facet-types", "delete", "customer-audit", "--json")
    assert code == 0 and json.loads(out) == {"deleted": "customer-audit", "revision": 1}
    code, _, err = cli("facet-types", "get", "customer-audit")
    assert code == 1 and _error(err)["code"] == "NOT_FOUND"


def test_facet_types_errors(cli, tmp_path):
    for key in ("structural", "descriptive", "relation"):
        code, _, err = cli("facet-types", "delete", key)
        assert code == 1 and _error(err)["code"] == "FAILED_PRECONDITION"
    disable = tmp_path / "disable.yaml"
    disable.write_text(
        "facet-types:\n  - typeKey: relation\n    mandatory: true\n    enabled: false\n    applicableTo: [TABLE]\n"
    )
    code, _, err = cli("facet-types", "apply", "-f", str(disable))
    assert code == 1 and _error(err)["code"] == "FAILED_PRECONDITION"
    bad = tmp_path / "bad.yaml"
    bad.write_text("facet-types:\n  - typeKey: broken\n    contentSchema: {type: objekt}\n")
    code, _, err = cli("facet-types", "apply", "-f", str(bad))
    assert code == 1 and _error(err)["code"] == "INVALID_ARGUMENT"
    code, _, err = cli("facet-types", "get", "Not A Key")
    assert code == 1 and _error(err)["code"] == "INVALID_ARGUMENT"
    code, _, err = cli("facet-types", "apply", "-f", str(tmp_path / "missing.yaml"))
    assert code == 1 and _error(err)["code"] == "INVALID_ARGUMENT"
    code, _, err = cli("facet-types", "delete", "x", "--expected-revision", "abc")
    assert code == 1 and _error(err)["code"] == "INVALID_ARGUMENT"
    assert cli("facet-types", "list", "--bogus")[0] == 2
    assert cli("facet-types", "rename")[0] == 2


def test_entities_sync_list_get_validate(cli, tmp_path):
    code, out, _ = cli("entities", "sync", "--json")
    synced = json.loads(out)
    assert code == 0 and synced["created"] == synced["entities"] > 100
    code, out, _ = cli("entities", "sync", "--json")
    assert json.loads(out)["unchanged"] == synced["entities"]

    ids, token = [], ""
    while True:
        argv = ["entities", "list", "--type", "TABLE", "--page-size", "4", "--json"] + (
            ["--page-token", token] if token else []
        )
        code, out, _ = cli(*argv)
        page = json.loads(out)
        assert code == 0 and set(page) == {"entities", "next_page_token"}
        assert all(e["type"] == "TABLE" and set(e) >= {"id", "type", "facets"} for e in page["entities"])
        ids += [e["id"] for e in page["entities"]]
        token = page["next_page_token"]
        if not token:
            break
    assert "google_ads.ad_group" in ids and len(ids) == len(set(ids)) == 7
    code, _, err = cli(
        "entities",
        "list",
        "--type",
        "ATTRIBUTE",
        "--page-token",
        cli("entities", "list", "--type", "TABLE", "--page-size", "1", "--json")[1]
        and json.loads(cli("entities", "list", "--type", "TABLE", "--page-size", "1", "--json")[1])["next_page_token"],
    )
    assert code == 1 and _error(err)["code"] == "INVALID_ARGUMENT"
    code, _, err = cli("entities", "list", "--type", "VIEW")
    assert code == 1 and _error(err)["code"] == "INVALID_ARGUMENT"

    code, out, _ = cli("entities", "get", "google_ads.ad_group", "--json")
    entity = json.loads(out)
    assert entity["id"] == "google_ads.ad_group" and entity["type"] == "TABLE"
    assert {"structural", "descriptive", "relation"} <= set(entity["facets"])
    assert entity["facets"]["relation"]["global"]["_type"] == "relation"
    code, _, err = cli("entities", "get", "google_ads.nope")
    assert code == 1 and _error(err)["code"] == "NOT_FOUND"

    code, out, _ = cli("entities", "validate", "--json")
    assert code == 0 and json.loads(out)["valid"] is True
    code, out, _ = cli("entities", "validate", "google_ads.campaign", "--json")
    assert code == 0 and json.loads(out)["checked"] == 1

    # disabling value-mapping makes the attributes carrying it invalid: exit 1, coded, every issue listed
    off = tmp_path / "off.yaml"
    off.write_text("facet-types:\n  - typeKey: value-mapping\n    enabled: false\n    applicableTo: [ATTRIBUTE]\n")
    assert cli("facet-types", "apply", "-f", str(off))[0] == 0
    code, out, err = cli("entities", "validate", "--json")
    report = json.loads(out)
    assert code == 1 and report["valid"] is False and report["invalid"] > 0
    assert {i["code"] for i in report["issues"]} == {"DISABLED_TYPE"}
    assert _error(err)["code"] == "FAILED_PRECONDITION"
    code, _, _ = cli("entities", "validate", "google_ads.campaign.campaign_status")
    assert code == 1

    out_file = tmp_path / "export.yaml"
    assert cli("entities", "export", "-o", str(out_file))[0] == 0
    assert "facet-types:" in out_file.read_text() and "entities:" in out_file.read_text()
