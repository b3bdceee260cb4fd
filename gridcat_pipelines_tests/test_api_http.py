"""The HTTP API through real HTTP: a ``gridcat serve`` process on loopback, SQLite and PostgreSQL.

Every JSON response is checked against the checked-in OpenAPI document.
"""

from __future__ import annotations

import http.client
import itertools
import json
from collections.abc import Iterator
from datetime import UTC

import pytest
import sqlalchemy as sa

from gridcat_pipelines.run_ids import new_run_id
from gridcat_pipelines.state import migrations
from gridcat_pipelines.state.db import create_state_engine
from gridcat_pipelines_tests.api_helpers import READ, ApiServer, Client, check_response

STATE = "/gridapi.v1.StateService/"
FACETS = "/gridapi.v1.StateFacetService/"
_customers = itertools.count(7_000_000_001)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(request, tmp_path_factory) -> Iterator[ApiServer]:
    """One server per dialect for this module, stopped with SIGTERM (must exit 0)."""
    home = tmp_path_factory.mktemp(f"api-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'state.db'}"
    else:
        url = request.getfixturevalue("pg_databases").create()
    engine = create_state_engine(url)
    migrations.upgrade(engine)
    engine.dispose()
    srv = ApiServer(url, home).start()
    try:
        yield srv
    finally:
        assert srv.stop() == 0, srv.log()


@pytest.fixture
def admin(server: ApiServer) -> Iterator[Client]:
    c = server.client()
    yield c
    c.close()


def key(**extra) -> dict:
    return {"customer_id": str(next(_customers)), "query_name": "campaign", "logical_date": "2026-11-01", **extra}


def rpc(client: Client, method: str, message: dict, **kw):
    service = (
        "StateService"
        if method in {"GetState", "ListStates", "GetStateHistory", "RecordResult", "SetAuthoritative"}
        else "StateFacetService"
    )
    path = f"/gridapi.v1.{service}/{method}"
    reply = client.request("POST", path, message, **kw)
    return reply, check_response("POST", path, reply)


# ------------------------------------------------------------------ health, docs, auth


def test_healthz_and_openapi_need_no_token(server: ApiServer):
    anon = server.client(token=None)
    health = anon.get("/healthz")
    assert health.status == 200
    assert check_response("GET", "/healthz", health)["status"] == "ok"
    doc = anon.get("/openapi.json")
    assert doc.status == 200
    from gridcat_pipelines_tests.api_helpers import OPENAPI

    assert doc.body == OPENAPI, "the served document is the checked-in docs/openapi.json"


@pytest.mark.parametrize(
    "token, method, expected, code",
    [
        (None, "GetState", 401, "unauthenticated"),
        ("not-a-token", "GetState", 401, "unauthenticated"),
        (READ, "GetState", 200, None),
        (READ, "RecordResult", 403, "permission_denied"),
    ],
)
def test_tokens(server: ApiServer, token, method, expected, code):
    client = server.client(token)
    message = key() if method == "GetState" else key(run_id=new_run_id(), status="success")
    reply, body = rpc(client, method, message)
    assert reply.status == expected, body
    if code:
        assert body["code"] == code
        assert READ not in reply.raw.decode() and "not-a-token" not in reply.raw.decode()


def test_a_wrong_scheme_is_unauthenticated(server: ApiServer):
    client = server.client(None)
    reply = client.request("POST", STATE + "GetState", key(), headers={"Authorization": f"Basic {READ}"})
    assert reply.status == 401 and reply.body["code"] == "unauthenticated"


# -------------------------------------------------------------------------- states


def test_unknown_key_is_pending_with_no_run(admin: Client):
    reply, body = rpc(admin, "GetState", key())
    assert reply.status == 200
    assert body["state"]["status"] == "pending" and body["state"]["current_run_id"] is None
    assert body["state"]["version"] == 0


def test_a_future_day_or_run_id_is_invalid_argument_and_changes_nothing(admin: Client):
    from datetime import datetime, timedelta

    from gridcat_pipelines.run_ids import run_id_at

    ahead = datetime.now(UTC) + timedelta(days=2)
    k = key(logical_date=ahead.date().isoformat())
    reply, body = rpc(admin, "RecordResult", {**k, "run_id": new_run_id(), "status": "success"})
    assert reply.status == 400 and body["code"] == "invalid_argument" and "logical_date" in body["message"]
    future_run = run_id_at(int((ahead + timedelta(days=365)).timestamp() * 1000))
    k = key()
    reply, body = rpc(admin, "RecordResult", {**k, "run_id": future_run, "status": "success"})
    assert reply.status == 400 and body["code"] == "invalid_argument" and "future" in body["message"]
    _, body = rpc(admin, "GetState", k)
    assert body["state"]["version"] == 0


def test_record_get_history_and_set_authoritative(admin: Client):
    k = key(customer_id="123-456-" + str(next(_customers)))
    older, newer = new_run_id(), new_run_id()
    reply, body = rpc(
        admin, "RecordResult", {**k, "run_id": older, "status": "success", "record_count": 3, "tags": {"env": "prod"}}
    )
    assert reply.status == 200 and body["outcome"] == "applied"
    assert "-" not in body["state"]["customer_id"], "hyphens normalised"
    _, body = rpc(admin, "RecordResult", {**k, "run_id": newer, "status": "failed", "error_message": "rows missing"})
    assert body["outcome"] == "applied" and body["state"]["status"] == "failed"
    _, body = rpc(admin, "RecordResult", {**k, "run_id": older, "status": "success", "record_count": 3})
    assert body["outcome"] == "superseded" and body["state"]["current_run_id"] == newer
    _, body = rpc(admin, "GetState", k)
    assert body["state"]["version"] == 2 and body["state"]["attempt_count"] == 2
    _, hist = rpc(admin, "GetStateHistory", k)
    assert [h["outcome"] for h in hist["history"]] == ["applied", "applied", "superseded"]
    # re-point with a stale version: failed_precondition (400), nothing changes
    reply, err = rpc(admin, "SetAuthoritative", {**k, "run_id": older, "expected_version": 1})
    assert reply.status == 400 and err["code"] == "failed_precondition"
    reply, body = rpc(admin, "SetAuthoritative", {**k, "run_id": older, "expected_version": 2})
    assert reply.status == 200 and body["state"]["current_run_id"] == older and body["state"]["version"] == 3


def test_camel_case_fields_are_accepted(admin: Client):
    k = key()
    camel = {
        "customerId": k["customer_id"],
        "queryName": "campaign",
        "logicalDate": "2026-11-01",
        "runId": new_run_id(),
        "status": "success",
        "recordCount": 7,
    }
    reply, body = rpc(admin, "RecordResult", camel)
    assert reply.status == 200 and body["state"]["record_count"] == 7
    reply, body = rpc(admin, "ListStates", {"customerId": k["customer_id"], "pageSize": 5})
    assert reply.status == 200 and len(body["states"]) == 1
    assert body["applied_facets"] == [] and body["non_facet_filters"] == []


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (b'{"customer_id": "1", "query_name": "campaign", "logical_date": "2026-11-01", "colour": 1}', "unknown field"),
        (b'{"customer_id": 5, "query_name": "campaign", "logical_date": "2026-11-01"}', "customer_id"),
        (b'{"customer_id": "abc", "query_name": "campaign", "logical_date": "2026-11-01"}', "customer_id"),
        (b'{"customer_id": "1", "query_name": "campaign", "logical_date": "2026-02-30"}', "2026-02-30"),
        (b'{"customer_id": "1", "query_name": "campaign"', "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"customer_id": "1", "query_name": "camp\\u0000aign", "logical_date": "2026-11-01"}', "NUL"),
        (b'{"customer_id": "1", "query_name": "\\ud800", "logical_date": "2026-11-01"}', "surrogate"),
        (b'{"customer_id": "1", "customerId": "2", "query_name": "c", "logical_date": "2026-11-01"}', "twice"),
        (b"\xff\xfe", "UTF-8"),
        (b'{"a": NaN}', "JSON"),
    ],
)
def test_bad_requests_are_invalid_argument(admin: Client, raw: bytes, fragment: str):
    reply = admin.request("POST", STATE + "GetState", raw=raw)
    body = check_response("POST", STATE + "GetState", reply)
    assert reply.status == 400 and body["code"] == "invalid_argument", body
    assert fragment.lower() in body["message"].lower(), body


def test_record_count_out_of_range_is_invalid(admin: Client):
    reply, body = rpc(
        admin, "RecordResult", {**key(), "run_id": new_run_id(), "status": "success", "record_count": 2**70}
    )
    assert reply.status == 400 and body["code"] == "invalid_argument"


def test_body_over_one_mebibyte_is_413_and_the_connection_survives(server: ApiServer, admin: Client):
    big = json.dumps({**key(), "pad": "x" * (2 * 1024 * 1024)}).encode()
    reply = admin.request("POST", STATE + "GetState", raw=big)
    body = check_response("POST", STATE + "GetState", reply)
    assert reply.status == 413 and body["code"] == "resource_exhausted"
    assert rpc(admin, "GetState", key())[0].status == 200


def test_oversized_chunked_body_is_413(server: ApiServer):
    """No Content-Length: the limit is enforced while reading."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    chunks = (b"{" + b" " * 65536 for _ in range(40))
    conn.request(
        "POST",
        STATE + "GetState",
        body=chunks,
        encode_chunked=True,
        headers={"Authorization": "Bearer admin-token-for-tests", "Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    assert resp.status == 413 and json.loads(resp.read())["code"] == "resource_exhausted"
    conn.close()


def test_wrong_method_unknown_path_and_content_type(admin: Client):
    reply = admin.request("TRACE", "/metadata/facet-types")
    assert reply.status == 405 and "GET" in reply.headers["allow"] and reply.body["code"] == "unimplemented"
    reply = admin.request("GET", STATE + "GetState")
    assert reply.status == 405 and reply.headers["allow"] == "POST"
    reply = admin.request("DELETE", "/healthz")
    assert reply.status == 405
    reply = admin.request("POST", "/gridapi.v1.StateService/Nope", {})
    assert reply.status == 404 and reply.body["code"] == "not_found"
    reply = admin.request(
        "POST", STATE + "GetState", raw=json.dumps(key()).encode(), headers={"Content-Type": "text/plain"}
    )
    assert reply.status == 415 and reply.body["code"] == "invalid_argument"


# -------------------------------------------------------------------- idempotency


def test_idempotency_key_replays_the_first_response(admin: Client):
    k = key()
    message = {**k, "run_id": new_run_id(), "status": "success", "record_count": 1}
    first, body1 = rpc(admin, "RecordResult", message, headers={"Idempotency-Key": "rec-1-" + k["customer_id"]})
    again, body2 = rpc(admin, "RecordResult", message, headers={"Idempotency-Key": "rec-1-" + k["customer_id"]})
    assert first.status == again.status == 200
    assert again.raw == first.raw and again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    # camelCase spelling of the same request is the same request
    camel = {
        "customerId": k["customer_id"],
        "queryName": "campaign",
        "logicalDate": "2026-11-01",
        "runId": message["run_id"],
        "status": "success",
        "recordCount": 1,
    }
    third, _ = rpc(admin, "RecordResult", camel, headers={"Idempotency-Key": "rec-1-" + k["customer_id"]})
    assert third.raw == first.raw
    other, body = rpc(
        admin, "RecordResult", {**message, "record_count": 2}, headers={"Idempotency-Key": "rec-1-" + k["customer_id"]}
    )
    assert other.status == 422 and body["code"] == "invalid_argument"
    _, state = rpc(admin, "GetState", k)
    assert state["state"]["version"] == 1 and state["state"]["record_count"] == 1


def test_an_error_is_replayed_too(admin: Client):
    k = key()
    message = {**k, "run_id": new_run_id(), "expected_version": 5}
    first, _ = rpc(admin, "SetAuthoritative", message, headers={"Idempotency-Key": "sa-" + k["customer_id"]})
    again, _ = rpc(admin, "SetAuthoritative", message, headers={"Idempotency-Key": "sa-" + k["customer_id"]})
    assert first.status == again.status == 404 and first.raw == again.raw
    assert again.headers.get("idempotent-replayed") == "true"


def test_a_bad_idempotency_key_is_invalid(admin: Client):
    reply, body = rpc(
        admin,
        "RecordResult",
        {**key(), "run_id": new_run_id(), "status": "success"},
        headers={"Idempotency-Key": "x" * 300},
    )
    assert reply.status == 400 and body["code"] == "invalid_argument"


# -------------------------------------------------------------------------- facets


def test_facet_lifecycle_over_rpc(admin: Client, server: ApiServer):
    k = key()
    rpc(admin, "RecordResult", {**k, "run_id": new_run_id(), "status": "success", "tags": {"team_http": "core"}})
    reply, facet = rpc(admin, "PromoteFacet", {"key_name": "team_http", "create_index": False})
    assert reply.status == 200 and facet["key_name"] == "team_http"
    again, body = rpc(admin, "PromoteFacet", {"key_name": "team_http"})
    assert again.status == 409 and body["code"] == "already_exists"
    _, listed = rpc(admin, "ListFacets", {})
    assert "team_http" in [f["key_name"] for f in listed["facets"]]
    reply, job = rpc(
        admin, "TriggerFacetBackfill", {"facet_id": facet["facet_id"], "mode": "MISSING_ONLY", "batch_size": 500}
    )
    assert reply.status == 200 and job["status"] == "PENDING"
    _, status = rpc(admin, "FacetBackfillStatus", {"job_id": job["job_id"]})
    assert status["status"] in ("PENDING", "RUNNING", "SUCCEEDED") and status["job_id"] == job["job_id"]
    _, page = rpc(
        admin, "ListStates", {"filters": [{"key": "team_http", "op": "EQ", "value": {"stringValue": "core"}}]}
    )
    assert [s["customer_id"] for s in page["states"]] == [k["customer_id"]]
    assert page["applied_facets"] + page["non_facet_filters"] == ["team_http"]
    _, compliance = rpc(admin, "ListFacetCompliance", {})
    row = next(f for f in compliance["facets"] if f["key_name"] == "team_http")
    assert row["rows_with_tag"] >= 1
    reply, disabled = rpc(admin, "DisableFacet", {"facet_id": facet["facet_id"], "reason": "test over"})
    assert reply.status == 200 and disabled["status"] == "DISABLED"
    assert isinstance(disabled["outstanding_backfill_jobs"], list)
    reply, err = rpc(admin, "ListStates", {"filters": [{"key": "team_http", "value": {"stringValue": "core"}}]})
    assert reply.status == 400 and err["code"] == "invalid_argument" and "key not promoted" in err["details"]


@pytest.mark.parametrize(
    "method, message, code",
    [
        ("PromoteFacet", {"key_name": "x", "column_name": "select"}, "invalid_argument"),
        ("PromoteFacet", {"key_name": "bad key; drop table"}, "invalid_argument"),
        ("TriggerFacetBackfill", {"facet_id": "00000000-0000-4000-8000-000000000000"}, "not_found"),
        (
            "TriggerFacetBackfill",
            {"facet_id": "00000000-0000-4000-8000-000000000000", "mode": "SOME"},
            "invalid_argument",
        ),
        ("FacetBackfillStatus", {"job_id": "nope"}, "invalid_argument"),
        ("ListStates", {"filters": [{"key": "nokey", "op": "EQ", "value": {"stringValue": "v"}}]}, "invalid_argument"),
        ("ListStates", {"page_size": -1}, "invalid_argument"),
        ("ListStates", {"page_token": "forged"}, "invalid_argument"),
    ],
)
def test_facet_and_listing_errors(admin: Client, method, message, code):
    reply, body = rpc(admin, method, message)
    assert body["code"] == code, body
    assert reply.status == {"invalid_argument": 400, "not_found": 404}[code]


def test_list_states_pages_visit_every_row_once(admin: Client):
    customer = str(next(_customers))
    for day in range(1, 8):
        rpc(
            admin,
            "RecordResult",
            {
                "customer_id": customer,
                "query_name": "campaign",
                "logical_date": f"2026-10-0{day}",
                "run_id": new_run_id(),
                "status": "success",
            },
        )
    seen, token = [], ""
    while True:
        _, page = rpc(admin, "ListStates", {"customer_id": customer, "page_size": 3, "page_token": token})
        seen += [s["logical_date"] for s in page["states"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == [f"2026-10-0{d}" for d in range(1, 8)]
    reply, body = rpc(admin, "ListStates", {"customer_id": str(next(_customers)), "page_token": token or "x"})
    assert reply.status == 400


# ------------------------------------------------------------------- the facet-type catalog spec REST


def test_facet_type_rest_crud(admin: Client, server: ApiServer):
    descriptor = {
        "typeKey": "http-test-type",
        "displayName": "HTTP test",
        "applicableTo": ["TABLE"],
        "contentSchema": {"type": "object", "required": ["owner"], "properties": {"owner": {"type": "string"}}},
    }
    created = admin.request("POST", "/metadata/facet-types", descriptor)
    body = check_response("POST", "/metadata/facet-types", created)
    assert created.status == 201 and body["typeKey"] == "http-test-type" and body["revision"] == 1
    assert body["createdBy"].startswith("api:") and "admin-token" not in body["createdBy"]
    dup = admin.request("POST", "/metadata/facet-types", descriptor)
    assert dup.status == 409 and check_response("POST", "/metadata/facet-types", dup)["code"] == "already_exists"
    got = admin.get("/metadata/facet-types/http-test-type")
    assert check_response("GET", "/metadata/facet-types/{typeKey}", got)["contentSchema"] == descriptor["contentSchema"]
    put = admin.request("PUT", "/metadata/facet-types/http-test-type", {**descriptor, "displayName": "renamed"})
    assert (
        put.status == 200 and check_response("PUT", "/metadata/facet-types/{typeKey}", put)["displayName"] == "renamed"
    )
    mismatch = admin.request("PUT", "/metadata/facet-types/http-test-type", {**descriptor, "typeKey": "other"})
    assert mismatch.status == 400
    listed = check_response("GET", "/metadata/facet-types", admin.get("/metadata/facet-types"))
    assert "http-test-type" in [d["typeKey"] for d in listed["facetTypes"]]
    deleted = admin.request("DELETE", "/metadata/facet-types/http-test-type")
    assert (
        deleted.status == 200
        and check_response("DELETE", "/metadata/facet-types/{typeKey}", deleted)["deleted"] == "http-test-type"
    )
    gone = admin.get("/metadata/facet-types/http-test-type")
    assert gone.status == 404 and check_response("GET", "/metadata/facet-types/{typeKey}", gone)["code"] == "not_found"
    platform = next(d["typeKey"] for d in listed["facetTypes"] if d["mandatory"])
    refused = admin.request("DELETE", f"/metadata/facet-types/{platform}")
    assert refused.status == 400 and refused.body["code"] == "failed_precondition"
    reader = server.client(READ)
    assert reader.get("/metadata/facet-types").status == 200
    assert reader.request("DELETE", f"/metadata/facet-types/{platform}").status == 403


def test_entities_rest(admin: Client):
    listed = admin.get("/metadata/entities?page_size=5")
    body = check_response("GET", "/metadata/entities", listed)
    assert listed.status == 200 and "next_page_token" in body
    assert admin.get("/metadata/entities?colour=blue").status == 400
    assert admin.get("/metadata/entities?page_size=abc").status == 400
    missing = admin.get("/metadata/entities/no.such.entity")
    assert (
        missing.status == 404 and check_response("GET", "/metadata/entities/{entityId}", missing)["code"] == "not_found"
    )
    entity = {"id": "gridcat.http.table", "type": "TABLE", "facets": {"http-unknown": {"global": {"a": 1}}}}
    report = admin.request("POST", "/metadata/entities/validate", entity)
    body = check_response("POST", "/metadata/entities/validate", report)
    assert report.status == 200 and isinstance(body["valid"], bool)


@pytest.mark.postgres
def test_healthz_is_503_when_the_database_is_gone(pg_url, pg_databases, tmp_path):
    """A server whose database is dropped under it answers 503 unavailable, never 500, and
    still shuts down cleanly."""
    srv = ApiServer(pg_url, tmp_path).start()
    try:
        admin_engine = sa.create_engine(
            pg_databases.admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
        )
        with admin_engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{sa.engine.make_url(pg_url).database}" WITH (FORCE)')
        admin_engine.dispose()
        reply = srv.client(None).get("/healthz")
        assert reply.status == 503 and check_response("GET", "/healthz", reply)["code"] == "unavailable"
        reply, body = rpc(srv.client(), "GetState", key())
        assert reply.status == 503 and body["code"] == "unavailable"
    finally:
        assert srv.stop() == 0, srv.log()


@pytest.mark.postgres
def test_a_key_in_flight_is_409_aborted_then_replayed(pg_url, tmp_path):
    """The first PromoteFacet waits on a table lock the test holds; the same key sent again
    meanwhile is 409 aborted; once the first finishes, the key replays its answer."""
    import threading
    import time

    srv = ApiServer(pg_url, tmp_path).start()
    blocker = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    try:
        headers = {"Idempotency-Key": "promote-in-flight"}
        first: dict = {}
        with blocker.connect() as conn, conn.begin():
            conn.exec_driver_sql("LOCK TABLE partition_state IN ACCESS EXCLUSIVE MODE")

            def send_first() -> None:
                first["reply"] = srv.client().rpc(
                    "StateFacetService", "PromoteFacet", {"key_name": "inflight"}, headers=headers
                )

            thread = threading.Thread(target=send_first)
            thread.start()
            time.sleep(0.5)  # the first request is now waiting for the lock
            second, body = rpc(srv.client(), "PromoteFacet", {"key_name": "inflight"}, headers=headers)
            assert second.status == 409 and body["code"] == "aborted", body
        thread.join(timeout=60)
        assert first["reply"].status == 200, first["reply"].raw
        third, _ = rpc(srv.client(), "PromoteFacet", {"key_name": "inflight"}, headers=headers)
        assert third.raw == first["reply"].raw and third.headers.get("idempotent-replayed") == "true"
    finally:
        blocker.dispose()
        assert srv.stop() == 0, srv.log()
