"""``gridcat serve`` as a process: refusing to start without tokens, draining on SIGTERM, the
OpenAPI document staying in step with the code, and the idempotency records on both dialects."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from gridcat_pipelines.api import openapi
from gridcat_pipelines.api.errors import HttpError
from gridcat_pipelines.api.idempotency import Claim, IdempotencyStore, StoredResponse
from gridcat_pipelines.errors import GridcatError
from gridcat_pipelines.state.db import create_state_engine
from gridcat_pipelines_tests.api_helpers import ADMIN, REPO, ApiServer


def test_checked_in_openapi_matches_the_code():
    checked_in = (REPO / "docs" / "openapi.json").read_text()
    assert checked_in == openapi.render(), (
        "docs/openapi.json is stale: run .venv/bin/python -m gridcat_pipelines.api.openapi --write docs/openapi.json"
    )


def test_every_route_is_documented_with_its_request_and_response():
    doc = json.loads(openapi.render())
    schemas = doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            ok = next(code for code in op["responses"] if code != "default")
            ref = op["responses"][ok]["content"]["application/json"]["schema"].get("$ref", "")
            assert not ref or ref.rsplit("/", 1)[1] in schemas, (method, path)
            if "requestBody" in op:
                name = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
                assert schemas[name]["type"] == "object", (method, path)


def _serve(tmp_path, sqlite_url, *args, **env):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDCAT_API_")}
    full_env.update(GRIDCAT_DB_URL=sqlite_url, GRIDCAT_HOME=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "-m", "gridcat_pipelines.cli.main", "serve", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_serve_refuses_to_start_without_tokens(tmp_path, sqlite_url):
    started = time.monotonic()
    result = _serve(tmp_path, sqlite_url, "--port", "18999")
    assert result.returncode == 1
    error = json.loads(result.stderr.strip().splitlines()[-1])
    assert error["code"] == "FAILED_PRECONDITION" and "--no-auth" in error["message"]
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("args", [("--port", "0"), ("--port", "http"), ("--log-level", "loud")])
def test_serve_rejects_bad_options(tmp_path, sqlite_url, args):
    result = _serve(tmp_path, sqlite_url, *args, "--no-auth")
    assert result.returncode == 1
    assert json.loads(result.stderr.strip().splitlines()[-1])["code"] == "INVALID_ARGUMENT"


def test_serve_says_when_the_schema_is_behind(tmp_path):
    result = _serve(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}", "--no-auth", GRIDCAT_API_ADMIN_TOKENS="a")
    assert result.returncode == 1
    error = json.loads(result.stderr.strip().splitlines()[-1])
    assert error["code"] == "FAILED_PRECONDITION" and "gridcat db upgrade" in error["message"]


def test_no_auth_serves_every_method_without_a_token(tmp_path, sqlite_url):
    srv = ApiServer(
        sqlite_url, tmp_path, no_auth=True, env={"GRIDCAT_API_ADMIN_TOKENS": "", "GRIDCAT_API_READ_TOKENS": ""}
    ).start()
    try:
        reply = srv.client(None).rpc("StateFacetService", "ListFacets")
        assert reply.status == 200 and reply.body == {"facets": []}
    finally:
        assert srv.stop() == 0


def test_sigterm_drains_a_request_in_flight(tmp_path, sqlite_url):
    """A request whose body is still arriving when SIGTERM lands is answered; then exit 0."""
    srv = ApiServer(sqlite_url, tmp_path).start()
    body = json.dumps({"customer_id": "1", "query_name": "campaign", "logical_date": "2026-11-01"}).encode()
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    try:
        head = (
            f"POST /gridapi.v1.StateService/GetState HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        sock.sendall(head + body[:10])
        time.sleep(0.5)
        started = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        sock.sendall(body[10:])
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert b'"status":"pending"' in answer
        srv.proc.wait(timeout=10)
        assert srv.proc.returncode == 0, srv.log()
        assert time.monotonic() - started < 10
    finally:
        sock.close()
        srv.stop()


def test_sigterm_with_idle_keepalive_connections_exits_at_once(tmp_path, sqlite_url):
    srv = ApiServer(sqlite_url, tmp_path).start()
    clients = [srv.client() for _ in range(4)]
    for c in clients:
        assert c.rpc("StateFacetService", "ListFacets").status == 200
    started = time.monotonic()
    assert srv.stop() == 0, srv.log()
    assert time.monotonic() - started < 6


# ------------------------------------------------------------- idempotency records


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def idem(db_url):
    engine = create_state_engine(db_url)
    clock = Clock()
    yield IdempotencyStore(engine, clock=clock, in_flight_timeout=timedelta(seconds=60)), clock
    engine.dispose()


def test_claim_replay_conflict_and_in_flight(idem):
    store, clock = idem
    first = store.claim("p", "k", "h1")
    assert isinstance(first, Claim)
    with pytest.raises(GridcatError) as in_flight:
        store.claim("p", "k", "h1")
    assert in_flight.value.code == "ABORTED"
    with pytest.raises(HttpError) as other:
        store.claim("p", "k", "h2")
    assert other.value.status == 422
    assert isinstance(store.claim("another-principal", "k", "h2"), Claim), "keys are scoped to the caller"
    assert store.complete("p", "k", first, 201, b'{"a":1}')
    replay = store.claim("p", "k", "h1")
    assert isinstance(replay, StoredResponse) and (replay.status, replay.body) == (201, b'{"a":1}')


def test_a_stale_in_flight_key_is_taken_over(idem):
    store, clock = idem
    assert isinstance(store.claim("p", "k", "h"), Claim)
    clock.now += timedelta(seconds=61)
    assert isinstance(store.claim("p", "k", "h"), Claim), "its server died: the next request runs"
    with pytest.raises(GridcatError):
        store.claim("p", "k", "h")


def test_a_slow_first_request_cannot_overwrite_the_takeover(idem):
    """The first request was slow, not dead: after the takeover, its late completion (a
    response or a 5xx) changes nothing, and the second request's response is the one kept."""
    store, clock = idem
    slow = store.claim("p", "k", "h")
    clock.now += timedelta(seconds=61)
    second = store.claim("p", "k", "h")
    assert store.complete("p", "k", second, 201, b'{"second":1}')
    assert not store.complete("p", "k", slow, 200, b'{"first":1}'), "the late first response is refused"
    assert not store.complete("p", "k", slow, 503, b"{}"), "and so is its late failure"
    replay = store.claim("p", "k", "h")
    assert isinstance(replay, StoredResponse) and replay.body == b'{"second":1}'


def test_a_late_first_request_cannot_complete_over_a_takeover_in_flight(idem):
    store, clock = idem
    slow = store.claim("p", "k", "h")
    clock.now += timedelta(seconds=61)
    assert isinstance(store.claim("p", "k", "h"), Claim)
    assert not store.complete("p", "k", slow, 200, b'{"first":1}')
    with pytest.raises(GridcatError) as in_flight:
        store.claim("p", "k", "h")
    assert in_flight.value.code == "ABORTED", "the takeover is still the one in flight"


def test_a_server_error_is_not_kept(idem):
    store, _ = idem
    claim = store.claim("p", "k", "h")
    store.complete("p", "k", claim, 503, b"{}")
    assert isinstance(store.claim("p", "k", "h"), Claim), "a retry after a 5xx runs again"


def test_old_records_are_deleted(idem):
    store, clock = idem
    old = store.claim("p", "old", "h")
    store.complete("p", "old", old, 200, b"{}")
    clock.now += timedelta(days=2)
    store._claims = 0  # the next claim sweeps
    assert isinstance(store.claim("p", "new", "h"), Claim)
    assert isinstance(store.claim("p", "old", "h"), Claim), "the day-old record was swept"


# ------------------------------------------------------- the request validator's fast path

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from jsonschema import Draft202012Validator  # noqa: E402

from gridcat_pipelines.api import messages  # noqa: E402
from gridcat_pipelines.api.schemas import REQUESTS  # noqa: E402

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**65), 2**65)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["1234567890", "2026-11-01", "campaign", "success", "FULL", "EQ", "env", "123-456"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(REQUESTS)), data=st.data())
def test_fast_path_never_accepts_what_jsonschema_rejects(name, data):
    schema = REQUESTS[name]
    fields = sorted(schema.get("properties", {}))
    value = data.draw(
        st.dictionaries(
            st.sampled_from(fields + ["unknown"]) if fields else st.just("unknown"), _json_values, max_size=6
        )
    )
    if messages._plainly_valid(value, schema):
        assert Draft202012Validator(schema).is_valid(value), (name, value)


# ------------------------------------------------------------- logging


def _serve_logging(tmp_path, sqlite_url, *args):
    """``gridcat serve --log-level info <args>`` on a free port; returns (process, port, log path)."""
    from gridcat_pipelines_tests.api_helpers import Client, free_port

    port = free_port()
    env = {
        **os.environ,
        "GRIDCAT_DB_URL": sqlite_url,
        "GRIDCAT_HOME": str(tmp_path),
        "GRIDCAT_API_ADMIN_TOKENS": ADMIN,
        "GRIDCAT_API_READ_TOKENS": "",
    }
    log_path = tmp_path / f"serve-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gridcat_pipelines.cli.main",
                "serve",
                "--port",
                str(port),
                "--log-level",
                "info",
                *args,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log_path.read_text()
        try:
            if Client("127.0.0.1", port, ADMIN).get("/healthz").status == 200:
                return proc, port, log_path
        except OSError:
            pass
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.1)


def _requests_then_stop(proc, port):
    from gridcat_pipelines_tests.api_helpers import Client

    client = Client("127.0.0.1", port, ADMIN)
    assert client.rpc("StateFacetService", "ListFacets").status == 200
    assert client.get("/v1/no-such-path").status == 404
    client.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0


def test_serve_logs_one_text_line_per_request_with_a_timestamp(tmp_path, sqlite_url):
    proc, port, log_path = _serve_logging(tmp_path, sqlite_url)
    _requests_then_stop(proc, port)
    lines = log_path.read_text().splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert all(re.match(stamp + r" (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ", line) for line in lines), lines
    rpc = [line for line in lines if "POST /gridapi.v1.StateFacetService/ListFacets" in line]
    assert len(rpc) == 1, lines
    assert re.fullmatch(
        stamp + r" INFO gridcat\.api\.access: POST /gridapi\.v1\.StateFacetService/ListFacets 200 \d+\.\d ms", rpc[0]
    )
    assert any(re.search(r"gridcat\.api\.access: GET /v1/no-such-path 404 \d+\.\d ms$", line) for line in lines)
    assert any("gridcat.api.server: gridcat serve: http://127.0.0.1:" in line for line in lines)
    assert any("uvicorn.error: Application startup complete." in line for line in lines)
    assert not any("uvicorn.access" in line for line in lines), "uvicorn's access log is replaced"
    assert ADMIN not in "\n".join(lines) and "Authorization" not in "\n".join(lines)


def test_serve_logs_json_lines(tmp_path, sqlite_url):
    proc, port, log_path = _serve_logging(tmp_path, sqlite_url, "--log-format", "json")
    _requests_then_stop(proc, port)
    text = log_path.read_text()
    entries = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert all({"ts", "level", "logger", "message"} <= set(e) for e in entries), entries
    (rpc,) = [e for e in entries if e.get("path") == "/gridapi.v1.StateFacetService/ListFacets"]
    assert rpc["logger"] == "gridcat.api.access" and rpc["level"] == "INFO"
    assert (rpc["method"], rpc["status"]) == ("POST", 200)
    assert isinstance(rpc["duration_ms"], (int, float)) and rpc["duration_ms"] >= 0
    assert rpc["message"].startswith("POST /gridapi.v1.StateFacetService/ListFacets 200 ")
    assert any(e.get("status") == 404 and e["method"] == "GET" for e in entries)
    assert any(e["logger"] == "uvicorn.error" for e in entries)
    assert ADMIN not in text and "Bearer" not in text


def test_serve_rejects_an_unknown_log_format(tmp_path, sqlite_url):
    result = _serve(tmp_path, sqlite_url, "--no-auth", "--log-format", "xml")
    assert result.returncode == 1
    assert json.loads(result.stderr.strip().splitlines()[-1])["code"] == "INVALID_ARGUMENT"


def test_serve_log_config_covers_uvicorn_and_gridcat():
    from gridcat_pipelines.api.server import log_config

    config = log_config("warning", "json")
    assert {"uvicorn", "uvicorn.error", "uvicorn.access", "gridcat"} <= set(config["loggers"])
    assert config["loggers"]["gridcat"]["level"] == "WARNING"
    assert log_config("info", access_log=False)["loggers"]["gridcat.api.access"]["level"] == "WARNING"
