"""The API under load and under a fuzzer, on a real server process.

- schemathesis 4.32.5 over ``docs/openapi.json`` with the options CI uses: no 5xx, no response
  that breaks its documented schema;
- 16 concurrent clients promoting, backfilling, recording and listing on PostgreSQL: no 5xx,
  no lost update, every idempotent replay identical.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

import pytest

from gridcat_pipelines.run_ids import new_run_id
from gridcat_pipelines_tests.api_helpers import ADMIN, ApiServer, check_response

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_schemathesis_finds_no_server_error_and_no_schema_break(request, tmp_path, dialect):
    url = request.getfixturevalue("sqlite_url" if dialect == "sqlite" else "pg_url")
    srv = ApiServer(url, tmp_path / "server").start()
    try:
        cli = Path(sys.executable).with_name("schemathesis")
        result = subprocess.run(
            [
                str(cli),
                "run",
                f"http://127.0.0.1:{srv.port}/openapi.json",
                "-H",
                f"Authorization: Bearer {ADMIN}",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--max-examples",
                "15",
                "--no-color",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        )
        tail = (result.stdout + result.stderr)[-6000:]
        assert result.returncode == 0, tail
        assert "passed" in result.stdout, tail
    finally:
        assert srv.stop() == 0, srv.log()


@pytest.mark.postgres
@pytest.mark.multiprocess
def test_sixteen_concurrent_clients(pg_url, tmp_path):
    srv = ApiServer(pg_url, tmp_path).start()
    shared = [
        {"customer_id": str(9_100_000_000 + i), "query_name": "campaign", "logical_date": "2026-11-02"}
        for i in range(4)
    ]
    statuses: list[int] = []
    offered: dict[str, list[str]] = defaultdict(list)  # customer -> run ids offered (one per distinct request)
    mismatched_replays: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        client = srv.client()
        try:
            if n < 2:  # two clients promote a facet each and backfill it
                reply = client.rpc("StateFacetService", "PromoteFacet", {"key_name": f"load_key_{n}"})
                with lock:
                    statuses.append(reply.status)
                facet = check_response("POST", "/gridapi.v1.StateFacetService/PromoteFacet", reply)
                assert reply.status == 200, facet
                for mode in ("FULL", "MISSING_ONLY"):
                    job = client.rpc(
                        "StateFacetService", "TriggerFacetBackfill", {"facet_id": facet["facet_id"], "mode": mode}
                    )
                    with lock:
                        statuses.append(job.status)
            for i in range(12):
                target = shared[(n + i) % len(shared)]
                run_id = new_run_id()
                message = {
                    **target,
                    "run_id": run_id,
                    "status": "success" if i % 3 else "failed",
                    "record_count": i,
                    "tags": {f"load_key_{n % 2}": f"v{i % 3}"},
                }
                if message["status"] == "failed":
                    message["error_message"] = "synthetic failure"
                idem = {"Idempotency-Key": f"load-{n}-{i}"}
                first = client.rpc("StateService", "RecordResult", message, headers=idem)
                replay = client.rpc("StateService", "RecordResult", message, headers=idem)
                listing = client.rpc("StateService", "ListStates", {"query_name": "campaign", "page_size": 50})
                with lock:
                    statuses.extend([first.status, replay.status, listing.status])
                    if first.status == 200:
                        offered[target["customer_id"]].append(run_id)
                    if replay.raw != first.raw or replay.headers.get("idempotent-replayed") != "true":
                        mismatched_replays.append(f"{n}-{i}: {first.raw[:80]!r} vs {replay.raw[:80]!r}")
                check_response("POST", "/gridapi.v1.StateService/RecordResult", first)
                check_response("POST", "/gridapi.v1.StateService/ListStates", listing)
        except BaseException as exc:  # surfaced below
            with lock:
                errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    try:
        assert not errors, f"{errors[0]}\n{srv.log()[-3000:]}"
        assert statuses and all(s < 500 for s in statuses), sorted(set(statuses))
        assert all(s == 200 for s in statuses), sorted(set(statuses))
        assert not mismatched_replays, mismatched_replays[:3]
        reader = srv.client()
        for target in shared:
            runs = offered[target["customer_id"]]
            state = reader.rpc("StateService", "GetState", target).body["state"]
            assert state["current_run_id"] == max(runs), "the newest run is authoritative: no lost update"
            history = reader.rpc("StateService", "GetStateHistory", target).body["history"]
            assert sorted(h["run_id"] for h in history) == sorted(runs), "one history row per offered result"
            applied = [h["run_id"] for h in history if h["outcome"] == "applied"]
            assert state["version"] == len(applied) and state["attempt_count"] == len(set(applied))
            assert len(applied) + sum(1 for h in history if h["outcome"] == "superseded") == len(runs)
        facets = reader.rpc("StateFacetService", "ListFacets").body["facets"]
        assert sorted(f["key_name"] for f in facets) == ["load_key_0", "load_key_1"]
    finally:
        assert srv.stop() == 0, srv.log()
