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


def _inject(monkeypatch, faults: dict[str, str]) -> None:
    """``gridcat pull`` builds its definitions with a synthetic source that injects ``faults``
    ("<customer>|<feed>|<day>" -> kind) on each partition's first pull."""
    from gridcat_pipelines import definitions
    from gridcat_pipelines.defs.ingestion.resources import AdsSourceResource

    real = definitions.build_defs
    monkeypatch.setattr(
        definitions,
        "build_defs",
        lambda settings=None, **kw: real(settings, ads_source=AdsSourceResource(forced_faults=faults)),
    )


def test_a_failed_pull_prints_one_line_per_failed_step_and_no_stack_trace(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("GRIDCAT_HOME", str(tmp_path))
    monkeypatch.delenv("GRIDCAT_DB_URL", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    _inject(
        monkeypatch,
        {"1234567890|campaign|2026-11-20": "crash_mid_write", "1234567890|campaign|2026-11-21": "crash_mid_write"},
    )
    assert main(["db", "upgrade"]) == 0
    capfd.readouterr()

    assert main(PULL) == 1
    out, err = capfd.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    error = json.loads(lines[-1])
    assert error["code"] == "FAILED_PRECONDITION" and "synthetic crash" in error["message"]
    run_id = error["details"][0]["dagster_run_id"]
    failed = [line for line in lines if line.startswith("failed: ")]
    assert failed == lines[:-1], err  # nothing else: no Dagster logging, no warnings
    (line,) = failed
    assert line.startswith(
        "failed: google_ads/raw/campaign, google_ads/validated/campaign 1234567890|2026-11-20: pull of campaign "
        "for 1234567890 on 2026-11-20 failed: SourceCrash: synthetic crash after 1 batch(es)"
    ), line
    assert line.endswith(f"(full trace: dagster run {run_id})"), line
    assert "Stack Trace" not in out + err and "Traceback" not in out + err

    # -v: Dagster's console logging, stack trace included, comes back (the one line stays)
    verbose = [a if a != "2026-11-20" else "2026-11-21" for a in PULL] + ["-v"]
    assert main(verbose) == 1
    out, err = capfd.readouterr()
    assert "Stack Trace" in err and "SourceCrash" in err
    assert (
        sum(
            line.startswith("failed: google_ads/raw/campaign, google_ads/validated/campaign 1234567890|2026-11-21: ")
            for line in err.splitlines()
        )
        == 1
    )
