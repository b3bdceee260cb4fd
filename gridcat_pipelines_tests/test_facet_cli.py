"""``gridcat facets ...`` and ``gridcat states list --filter``: spellings, JSON shapes, coded
errors; a backfill process killed with SIGKILL resumes to exact counts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gridcat_pipelines.cli.main import main
from gridcat_pipelines.run_ids import new_run_id
from gridcat_pipelines.state import StateStore
from gridcat_pipelines.tag_facets.service import FacetService
from gridcat_pipelines_tests.facet_helpers import seed_states

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRIDCAT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GRIDCAT_DB_URL", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    assert run("db", "upgrade")[0] == 0
    return run


def _error(stderr: str) -> dict:
    return json.loads(stderr.strip().splitlines()[-1])


def _record(cli, customer: str, **tags: str) -> None:
    args = [
        "states",
        "record",
        "--customer",
        customer,
        "--query",
        "campaign",
        "--date",
        "2026-11-01",
        "--run-id",
        new_run_id(),
        "--status",
        "success",
        "--json",
    ]
    for k, v in tags.items():
        args += ["--tag", f"{k}={v}"]
    assert cli(*args)[0] == 0


def test_facet_session(cli):
    for i in range(6):
        _record(cli, str(100 + i), env="prod" if i % 2 else "dev", team="core")
    code, out, _ = cli("facets", "promote", "--key", "env", "--json")
    promoted = json.loads(out)
    assert code == 0
    assert {
        "facet_id",
        "key_name",
        "column_name",
        "projection_column",
        "status",
        "promotion_started_at",
        "job_id",
    } <= set(promoted)
    assert promoted["status"] == "BACKFILLING"

    code, out, _ = cli("states", "list", "--filter", "env=prod", "--json")
    page = json.loads(out)
    assert code == 0 and len(page["states"]) == 3
    assert page["applied_facets"] == [] and page["non_facet_filters"] == ["env"]

    code, out, err = cli(
        "facets",
        "backfill",
        "--facet-id",
        promoted["facet_id"],
        "--mode",
        "MISSING_ONLY",
        "--batch-size",
        "2",
        "--wait",
        "--json",
    )
    job = json.loads(out)
    assert code == 0 and job["status"] == "SUCCEEDED" and job["job_id"]
    assert "rows" in err and "SUCCEEDED" in err  # the progress bar

    code, out, _ = cli("facets", "backfill", "--facet-id", promoted["facet_id"], "--json")
    assert json.loads(out) == {"job_id": json.loads(out)["job_id"], "status": "PENDING"}
    code, out, _ = cli("facets", "backfill-status", "--job-id", promoted["job_id"], "--json")
    status = json.loads(out)
    assert status["status"] in ("PENDING", "SUCCEEDED")
    assert {
        "rows_total",
        "rows_processed",
        "failures",
        "started_at",
        "updated_at",
        "finished_at",
        "eta_seconds",
    } <= set(status)

    code, out, _ = cli("facets", "list", "--json")
    (facet,) = json.loads(out)["facets"]
    assert facet["status"] == "ENABLED" and facet["last_refresh_succeeded_at"]

    code, out, _ = cli("states", "list", "--filter", "env=prod", "--filter", "env=prod", "--page-size", "2", "--json")
    page = json.loads(out)
    assert page["applied_facets"] == ["env"] and len(page["states"]) == 2 and page["next_page_token"]
    code, _, err = cli("states", "list", "--filter", "env=dev", "--page-token", page["next_page_token"], "--json")
    assert code == 1 and _error(err)["code"] == "INVALID_ARGUMENT"

    code, out, _ = cli("facets", "compliance", "--json")
    assert json.loads(out) == {
        "facets": [
            {
                "facet_id": promoted["facet_id"],
                "key_name": "env",
                "rows_total": 6,
                "rows_with_tag": 6,
                "null_with_tag": 0,
                "tag_absent": 0,
                "drift": 0,
            }
        ]
    }

    code, out, _ = cli("facets", "disable", "--facet-id", promoted["facet_id"], "--reason", "deprecated key", "--json")
    disabled = json.loads(out)
    assert code == 0 and disabled["status"] == "DISABLED" and disabled["disabled_at"]
    assert len(disabled["outstanding_backfill_jobs"]) == 2  # the initial job and the one queued above
    code, _, err = cli("states", "list", "--filter", "env=prod", "--json")
    assert code == 1 and _error(err)["code"] == "INVALID_ARGUMENT" and "key not promoted" in _error(err)["details"]

    code, out, _ = cli("facets", "list")
    assert code == 0 and "DISABLED" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["facets", "promote", "--key", "env", "--column", "Bad-Name"],
        ["facets", "promote", "--key", "env", "--column", "select"],
        ["facets", "promote", "--key", "env", "--column", "status"],
        ["facets", "promote", "--key", "e'nv"],
        ["facets", "backfill", "--facet-id", "00000000-0000-0000-0000-000000000000", "--mode", "SOME"],
        ["facets", "backfill", "--facet-id", "00000000-0000-0000-0000-000000000000", "--batch-size", "ten"],
        ["facets", "backfill", "--facet-id", "nope"],
        ["facets", "backfill-status", "--job-id", "nope"],
        ["facets", "disable", "--facet-id", "nope", "--reason", "x"],
        ["states", "list", "--filter", "env"],
        ["states", "list", "--filter", "env=prod"],
        ["states", "list", "--page-size", "-1"],
    ],
)
def test_invalid_arguments_are_json_errors(cli, argv):
    code, out, err = cli(*argv)
    assert code == 1 and out == ""
    assert _error(err)["code"] == "INVALID_ARGUMENT"


def test_unknown_ids_are_not_found(cli):
    code, _, err = cli("facets", "backfill-status", "--job-id", "00000000-0000-0000-0000-000000000000")
    assert code == 1 and _error(err)["code"] == "NOT_FOUND"


@pytest.mark.slow
@pytest.mark.multiprocess
def test_backfill_killed_with_sigkill_resumes_to_exact_counts(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = StateStore.open(url, upgrade=True)
    seed_states(store, 40, lambda i: {"env": f"e{i % 3}"})
    svc = FacetService(store)
    facet = svc.promote("env")
    job_id = svc.trigger_backfill(facet["facet_id"], 2, "FULL")["job_id"]
    script = textwrap.dedent(
        f"""
        import time
        from gridcat_pipelines.state import StateStore
        from gridcat_pipelines.tag_facets.service import FacetService
        svc = FacetService(StateStore.open({url!r}))
        svc.run_backfill({job_id!r}, progress=lambda job: time.sleep(0.05))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env={**os.environ})
    try:
        deadline = time.monotonic() + 30
        while svc.backfill_status(job_id)["rows_processed"] < 10:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    mid = svc.backfill_status(job_id)
    assert mid["status"] == "RUNNING" and 10 <= mid["rows_processed"] < 40
    assert mid["rows_processed"] == 2 * mid["batches"]  # work and checkpoint committed together
    done = svc.run_backfill(job_id)
    assert (done["status"], done["rows_processed"], done["rows_total"], done["batches"]) == ("SUCCEEDED", 40, 40, 20)
    (c,) = svc.compliance()["facets"]
    assert (c["null_with_tag"], c["drift"]) == (0, 0)
    store.close()
