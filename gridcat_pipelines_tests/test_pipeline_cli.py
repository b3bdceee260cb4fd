"""``gridcat pull`` and ``gridcat warehouse status``."""

from __future__ import annotations

import json

from gridcat_pipelines.cli.main import main

PULL = ["pull", "--customer", "123-456-7890", "--query", "campaign", "--date", "2026-11-20", "--json"]


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_pull_makes_a_new_run_each_time_and_warehouse_status_reports_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRIDCAT_HOME", str(tmp_path))
    monkeypatch.delenv("GRIDCAT_DB_URL", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert _run(capsys, "db", "upgrade")[0] == 0
    code, out, err = _run(capsys, *PULL)
    assert code == 0, err
    first = json.loads(out)
    assert set(first) == {"run_id", "outcome", "state"}
    assert first["outcome"] == "applied" and first["state"]["current_run_id"] == first["run_id"]
    assert first["state"]["status"] == "success"

    code, out, _ = _run(capsys, *PULL)
    second = json.loads(out)
    assert second["run_id"] > first["run_id"] and second["state"]["version"] == 2

    code, out, _ = _run(capsys, "warehouse", "status", "--json")
    report = json.loads(out)
    assert report["summary"] == {"in_sync": 0, "stale": 0, "held": 0, "missing": 1}
    (row,) = report["partitions"]
    assert row["authoritative_run_id"] == second["run_id"] and row["loaded_run_id"] is None
    assert row["sync"] == "missing"


def test_pull_of_an_unknown_customer_or_feed_is_not_found(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRIDCAT_HOME", str(tmp_path))
    monkeypatch.delenv("GRIDCAT_DB_URL", raising=False)
    for argv in (["--customer", "42"], ["--query", "nope"]):
        args = list(PULL)
        flag, value = argv
        args[args.index(flag) + 1] = value
        code, _, err = _run(capsys, *args)
        assert code == 1
        assert json.loads(err.strip().splitlines()[-1])["code"] == "NOT_FOUND"
