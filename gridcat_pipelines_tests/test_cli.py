"""The ``gridcat`` CLI: spellings, JSON shapes, coded errors on stderr, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gridcat_pipelines.cli.main import main
from gridcat_pipelines.run_ids import new_run_id

KEY_ARGS = ["--customer", "123-456-7890", "--query", "campaign", "--date", "2026-11-01"]


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys, request):
    """Run ``gridcat`` in-process against a fresh home (and PostgreSQL when parametrized)."""
    monkeypatch.setenv("GRIDCAT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GRIDCAT_DB_URL", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _error(stderr: str) -> dict:
    return json.loads(stderr.strip().splitlines()[-1])


def test_commands_before_upgrade_say_how_to_fix(cli):
    code, _, err = cli("states", "get", *KEY_ARGS, "--json")
    assert code == 1
    assert _error(err)["code"] == "FAILED_PRECONDITION"
    assert "gridcat db upgrade" in _error(err)["message"]


def test_state_round_trip(cli):
    assert cli("db", "upgrade")[0] == 0
    code, out, _ = cli("db", "upgrade", "--json")
    assert code == 0 and json.loads(out)["applied"] == []

    code, out, _ = cli("states", "get", *KEY_ARGS, "--json")
    state = json.loads(out)
    assert code == 0
    assert list(state) == [
        "source",
        "customer_id",
        "query_name",
        "logical_date",
        "status",
        "current_run_id",
        "schema_version",
        "record_count",
        "updated_at",
        "error_message",
        "attempt_count",
        "version",
        "tags",
    ]
    assert (state["status"], state["current_run_id"], state["customer_id"]) == ("pending", None, "1234567890")

    old, new = new_run_id(), new_run_id()
    code, out, _ = cli(
        "states",
        "record",
        *KEY_ARGS,
        "--run-id",
        new,
        "--status",
        "success",
        "--record-count",
        "12",
        "--schema-version",
        "3",
        "--tag",
        "team=core",
        "--tag",
        "env=prod",
        "--json",
    )
    rec = json.loads(out)
    assert code == 0 and rec["outcome"] == "applied"
    assert rec["state"]["tags"] == {"env": "prod", "team": "core"} and rec["state"]["record_count"] == 12

    code, out, _ = cli(
        "states", "record", *KEY_ARGS, "--run-id", old, "--status", "failed", "--error", "late", "--json"
    )
    assert json.loads(out)["outcome"] == "superseded"
    code, out, _ = cli(
        "states",
        "record",
        *KEY_ARGS,
        "--run-id",
        new,
        "--status",
        "success",
        "--record-count",
        "12",
        "--schema-version",
        "3",
        "--tag",
        "team=core",
        "--tag",
        "env=prod",
        "--json",
    )
    assert json.loads(out)["outcome"] == "replayed"

    code, out, _ = cli("states", "set-authoritative", *KEY_ARGS, "--run-id", old, "--expected-version", "1", "--json")
    assert code == 0 and json.loads(out)["current_run_id"] == old and json.loads(out)["version"] == 2

    code, out, _ = cli("states", "history", *KEY_ARGS, "--json")
    assert [h["outcome"] for h in json.loads(out)["history"]] == ["applied", "superseded", "replayed", "repointed"]

    code, out, _ = cli("states", "list", "--json", "--page-size", "1")
    page = json.loads(out)
    assert set(page) == {"states", "next_page_token"} and page["next_page_token"] == ""
    assert len(page["states"]) == 1

    code, out, _ = cli("states", "get", *KEY_ARGS)
    assert code == 0 and "status" in out and "failed" in out


@pytest.mark.parametrize(
    "argv, code",
    [
        (["states", "get", "--customer", "12x", "--query", "campaign", "--date", "2026-11-01"], "INVALID_ARGUMENT"),
        (["states", "get", "--customer", "1", "--query", "campaign", "--date", "2026-11-31"], "INVALID_ARGUMENT"),
        (["states", "list", "--status", "done"], "INVALID_ARGUMENT"),
        (["states", "list", "--page-size", "-1"], "INVALID_ARGUMENT"),
        (["states", "list", "--page-size", "ten"], "INVALID_ARGUMENT"),
        (["states", "list", "--page-token", "forged.token"], "INVALID_ARGUMENT"),
        (["states", "record", *KEY_ARGS, "--run-id", "abc", "--status", "success"], "INVALID_ARGUMENT"),
        (["states", "record", *KEY_ARGS, "--run-id", "RUN", "--status", "ok"], "INVALID_ARGUMENT"),
        (["states", "set-authoritative", *KEY_ARGS, "--run-id", "RUN", "--expected-version", "0"], "NOT_FOUND"),
    ],
)
def test_errors_are_coded_json_and_change_nothing(cli, argv, code):
    cli("db", "upgrade")
    argv = [new_run_id() if a == "RUN" else a for a in argv]
    before = cli("states", "list", "--json")[1]
    status, out, err = cli(*argv)
    assert status == 1
    assert _error(err)["code"] == code
    assert set(_error(err)) == {"code", "message", "details"}
    assert cli("states", "list", "--json")[1] == before


def test_console_script_exit_codes(tmp_path):
    """The installed ``gridcat`` script: 1 with a JSON error line, 2 for an unknown flag."""
    exe = Path(sys.executable).with_name("gridcat")
    env = {**os.environ, "GRIDCAT_HOME": str(tmp_path)}
    env.pop("GRIDCAT_DB_URL", None)
    bad = subprocess.run(
        [str(exe), "states", "get", "--customer", "x", "--query", "q", "--date", "2026-01-01"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert json.loads(bad.stderr.strip().splitlines()[-1])["code"] == "INVALID_ARGUMENT"
    unknown = subprocess.run([str(exe), "states", "get", "--bogus"], env=env, capture_output=True, text=True)
    assert unknown.returncode == 2
    ok = subprocess.run([str(exe), "db", "upgrade", "--json"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "state.db").exists()


@pytest.mark.postgres
def test_cli_on_postgresql(cli, monkeypatch, pg_databases):
    url = pg_databases.create()
    monkeypatch.setenv("GRIDCAT_DB_URL", url)
    assert cli("db", "upgrade")[0] == 0
    code, out, _ = cli(
        "states",
        "record",
        *KEY_ARGS,
        "--run-id",
        new_run_id(),
        "--status",
        "failed",
        "--error",
        "schema mismatch",
        "--json",
    )
    assert code == 0 and json.loads(out)["state"]["status"] == "failed"
    code, out, _ = cli("states", "list", "--status", "failed", "--json")
    assert len(json.loads(out)["states"]) == 1
