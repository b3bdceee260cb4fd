"""No database password or Google Ads token reaches the Dagster UI, a run's config or its logs.

The state store and the warehouse are PostgreSQL databases whose URLs carry a password (the
test server trusts loopback, so any password works). The CLI runs the demo through Dagster on
that setup, then the real ``dagster-webserver`` serves the code location, and the test reads,
through its GraphQL, what a user of the UI can see: every resource's configured values, every
run's config and tags, and every event of every run. The password appears in none of it, and
the resources show the variables' names instead. The ``GOOGLE_ADS_*`` tokens (set here for the
synthetic source, which ignores them) go the same way: each token contains the password string.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

RESOURCES = """
{ repositoriesOrError { ... on RepositoryConnection { nodes { name
    allTopLevelResourceDetails { name configuredValues { key value type } } } } } }"""
RUNS = """
{ runsOrError { ... on Runs { results { runId jobName runConfigYaml tags { key value } } } } }"""
EVENTS = """
query Events($runId: ID!) { logsForRun(runId: $runId, limit: 5000) { __typename
  ... on EventConnection { events { __typename
    ... on MessageEvent { message }
    ... on DisplayableEvent { metadataEntries { label
      ... on TextMetadataEntry { text } ... on PathMetadataEntry { path }
      ... on JsonMetadataEntry { jsonString } ... on MarkdownMetadataEntry { mdStr }
      ... on UrlMetadataEntry { url } } } } } } }"""


def _with_password(url: str, password: str) -> str:
    return sa.engine.make_url(url).set(password=password).render_as_string(hide_password=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        answer = json.loads(reply.read())
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


def _wait_for_webserver(port: int, web: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert web.poll() is None, f"dagster-webserver exited: {log.read_text()[-3000:]}"
        try:
            data = _graphql(
                port, "{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { name } } } }"
            )
            if data["repositoriesOrError"].get("nodes"):
                return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"dagster-webserver did not serve the code location: {log.read_text()[-3000:]}")


def test_no_password_reaches_the_dagster_ui_run_config_or_logs(tmp_path, pg_databases):
    password = f"pw-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "GRIDCAT_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "GRIDCAT_DB_URL": _with_password(pg_databases.create(), password),
        "GRIDCAT_WAREHOUSE_URL": _with_password(pg_databases.create(), password),
        # Google Ads credentials set for the (here synthetic) source: they reach the resource too
        "GOOGLE_ADS_DEVELOPER_TOKEN": f"dev-{password}",
        "GOOGLE_ADS_CLIENT_SECRET": f"client-{password}",
        "GOOGLE_ADS_REFRESH_TOKEN": f"refresh-{password}",
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    demo = subprocess.run(
        [str(BIN / "gridcat"), "demo", "--customers", "1", "--days", "1", "--fault-rate", "0", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert password not in demo.stdout + demo.stderr

    port, log = _free_port(), tmp_path / "webserver.log"
    with log.open("w") as out:
        web = subprocess.Popen(
            [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_webserver(port, web, log)
        seen = []
        resources = _graphql(port, RESOURCES)
        seen.append(resources)
        (repo,) = resources["repositoriesOrError"]["nodes"]
        configured = {
            r["name"]: {v["key"]: (v["type"], v["value"]) for v in r["configuredValues"]}
            for r in repo["allTopLevelResourceDetails"]
        }
        assert configured["state_store"]["db_url"] == ("ENV_VAR", "GRIDCAT_DB_URL")
        assert configured["warehouse"]["url"] == ("ENV_VAR", "GRIDCAT_WAREHOUSE_URL")
        assert configured["ads_source"]["developer_token"] == ("ENV_VAR", "GOOGLE_ADS_DEVELOPER_TOKEN")
        assert configured["ads_source"]["refresh_token"] == ("ENV_VAR", "GOOGLE_ADS_REFRESH_TOKEN")

        runs = _graphql(port, RUNS)["runsOrError"]["results"]
        seen.append(runs)
        assert {r["jobName"] for r in runs} >= {"google_ads_ingest", "google_ads_warehouse_load"}
        events = 0
        for run in runs:
            logs = _graphql(port, EVENTS, {"runId": run["runId"]})["logsForRun"]
            assert logs["__typename"] == "EventConnection"
            events += len(logs["events"])
            seen.append(logs)
        assert events > 0
        assert password not in json.dumps(seen), "a password reached the Dagster UI"
        assert password not in log.read_text(), "a password reached the webserver's log"
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        try:
            web.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(web.pid, signal.SIGKILL)
            web.wait()
