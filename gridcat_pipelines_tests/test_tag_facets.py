"""Tag facets (the tag-facet contract) on SQLite and PostgreSQL: validation, projector, backfill, filters."""

from __future__ import annotations

import pytest

from gridcat_pipelines.errors import GridcatError
from gridcat_pipelines.state import StateFilter
from gridcat_pipelines.tag_facets import ddl
from gridcat_pipelines.tag_facets.identifiers import RESERVED_WORDS, parse_column_name
from gridcat_pipelines.tag_facets.service import FacetService
from gridcat_pipelines_tests.facet_helpers import all_pages, eq, result, seed_states, snapshot

ENVS = ["prod", "staging", "dev"]


@pytest.fixture
def svc(store):
    return FacetService(store)


def _tags(i: int) -> dict:
    tags = {"env": ENVS[i % 3], "team": f"t{i % 4}"}
    if i % 5 == 0:
        del tags["team"]  # some rows lack the tag
    return tags


def _code(fn, *args, **kwargs) -> GridcatError:
    with pytest.raises(GridcatError) as err:
        fn(*args, **kwargs)
    return err.value


def _rejected(store, fn, *args, **kwargs) -> GridcatError:
    """The call fails with a GridcatError and changes nothing (schema, registry, jobs, rows)."""
    before = snapshot(store)
    error = _code(fn, *args, **kwargs)
    assert snapshot(store) == before
    return error


def test_promote_write_backfill_filter_matches_tag_map(store, svc):
    seed_states(store, 40, _tags)
    env = svc.promote("env")
    assert env["status"] == "BACKFILLING" and env["projection_column"] == "env" and env["job_id"]
    # while BACKFILLING the filter is served from the tags
    page = store.list_states(filters=[eq("env", "prod")], page_size=1000)
    assert page.applied_facets == [] and page.non_facet_filters == ["env"]
    assert len(page.states) == 14
    # writes after promotion project at once
    store.record_results([result(100 + i, _tags(i)) for i in range(10)])
    job = svc.run_backfill(env["job_id"])
    assert job["status"] == "SUCCEEDED" and job["rows_processed"] == job["rows_total"] == 40
    team = svc.promote("team", "team_name", create_index=False)
    assert svc.run_backfill(team["job_id"])["status"] == "SUCCEEDED"
    assert {f["status"] for f in svc.list_facets()["facets"]} == {"ENABLED"}
    for f in svc.compliance()["facets"]:
        assert f["rows_total"] == 50 and f["null_with_tag"] == 0 and f["drift"] == 0
    everything = all_pages(store, None, page_size=1000)
    for env_value in ENVS:
        for team_value in ["t0", "t1", "t3"]:
            filters = [eq("env", env_value), eq("team", team_value)]
            got = all_pages(store, filters)
            want = [s for s in everything if s.tags.get("env") == env_value and s.tags.get("team") == team_value]
            assert [s.key for s in got] == [s.key for s in want]
    page = store.list_states(filters=[eq("env", "prod"), eq("team", "t1")])
    assert page.applied_facets == ["env", "team"] and page.non_facet_filters == []
    assert page.to_json()["applied_facets"] == ["env", "team"]
    # base-column filters compose with facet filters
    only = store.list_states(StateFilter(customer_id="1003"), filters=[eq("env", "prod")])
    assert [s.key.customer_id for s in only.states] == ["1003"]


def test_update_and_set_authoritative_reproject(store, svc):
    seed_states(store, 3, _tags)
    fid = svc.promote("env")
    svc.run_backfill(fid["job_id"])
    r = result(1, {"env": "moved"})
    r = type(r)(key=r.key, run_id=r.run_id, status="success", tags={"env": "moved"})
    first = store.record_result(r).state
    assert [s.key for s in store.list_states(filters=[eq("env", "moved")]).states] == [r.key]
    older_run = [h.run_id for h in store.history(r.key)][0]
    store.set_authoritative(r.key, older_run, first.version)
    assert store.list_states(filters=[eq("env", "moved")]).states == []
    assert svc.compliance()["facets"][0]["drift"] == 0


def test_validation_rules_change_nothing(store, svc):
    seed_states(store, 5, _tags)
    env = svc.promote("env")
    svc.run_backfill(env["job_id"])
    assert _rejected(store, svc.promote, "env").code == "ALREADY_EXISTS"
    assert _rejected(store, svc.promote, "ENV", "env").code == "INVALID_ARGUMENT"  # column taken by a facet
    for column in ["Team", "1team", "team-x", "a" * 32, "", "x;drop table partition_state", 'a"b']:
        if column == "":
            continue
        assert _rejected(store, svc.promote, "team", column).code == "INVALID_ARGUMENT", column
    for reserved in ["select", "order", "user", "table", "group", "rowid", "oid"]:
        assert _rejected(store, svc.promote, "team", reserved).code == "INVALID_ARGUMENT", reserved
    for existing in ["status", "tags", "version", "customer_id", "updated_at"]:
        assert _rejected(store, svc.promote, "team", existing).code == "INVALID_ARGUMENT", existing
    for key in ["", "team'; DROP TABLE partition_state; --", "a b", "1abc", None, 5]:
        assert _rejected(store, svc.promote, key).code == "INVALID_ARGUMENT", key
    assert _rejected(store, svc.promote, "team", None, "yes").code == "INVALID_ARGUMENT"
    # a key whose derived column is not valid needs --column
    assert _rejected(store, svc.promote, "Select").code == "INVALID_ARGUMENT"
    # disable / backfill / status
    assert _rejected(store, svc.disable, "not-a-uuid", "x").code == "INVALID_ARGUMENT"
    assert _rejected(store, svc.disable, env["facet_id"], "").code == "INVALID_ARGUMENT"
    assert _rejected(store, svc.disable, "00000000-0000-0000-0000-000000000000", "x").code == "NOT_FOUND"
    assert _rejected(store, svc.trigger_backfill, env["facet_id"], 10, "PARTIAL").code == "INVALID_ARGUMENT"
    for size in [-1, 100_001, "10", True, 1.5]:
        assert _rejected(store, svc.trigger_backfill, env["facet_id"], size, "FULL").code == "INVALID_ARGUMENT"
    assert _rejected(store, svc.trigger_backfill, "00000000-0000-0000-0000-000000000000").code == "NOT_FOUND"
    assert _rejected(store, svc.backfill_status, "00000000-0000-0000-0000-000000000000").code == "NOT_FOUND"
    assert _rejected(store, svc.backfill_status, "../etc").code == "INVALID_ARGUMENT"
    assert _rejected(store, svc.run_backfill, "00000000-0000-0000-0000-000000000000").code == "NOT_FOUND"
    # filters
    for bad in [
        [eq("nope", "x")],
        [{"key": "env", "op": "NEQ", "value": {"stringValue": "x"}}],
        [{"key": "env", "op": "IN", "value": {"stringValue": "x"}}],
    ]:
        err = _rejected(store, store.list_states, filters=bad)
        assert err.code == "INVALID_ARGUMENT" and "key not promoted" in err.details
    for bad in [[{"key": "env", "op": "EQ", "value": {"intValue": 3}}], ["env=prod"], "env=prod", [{"op": "EQ"}]]:
        assert _rejected(store, store.list_states, filters=bad).code == "INVALID_ARGUMENT"
    assert _rejected(store, store.list_states, page_size=-1).code == "INVALID_ARGUMENT"
    # disabled: filters refused, trigger refused, disable twice refused
    out = svc.disable(env["facet_id"], "deprecated key")
    assert out["status"] == "DISABLED" and out["disabled_at"] and out["outstanding_backfill_jobs"] == []
    err = _rejected(store, store.list_states, filters=[eq("env", "prod")])
    assert err.code == "INVALID_ARGUMENT" and "key not promoted" in err.details
    assert _rejected(store, svc.trigger_backfill, env["facet_id"]).code == "FAILED_PRECONDITION"
    assert _rejected(store, svc.disable, env["facet_id"], "again").code == "FAILED_PRECONDITION"


def test_budget_counts_every_facet_not_disabled(store, svc):
    ids = [svc.promote(f"k{i}")["facet_id"] for i in range(12)]
    assert _rejected(store, svc.promote, "k12").code == "RESOURCE_EXHAUSTED"
    svc.disable(ids[0], "make room")
    assert svc.promote("k12")["status"] == "ENABLED"  # no rows: enabled at once
    assert _rejected(store, svc.promote, "k0").code == "RESOURCE_EXHAUSTED"  # re-promotion counts too


def test_disable_keeps_column_and_repromote_reuses_it(store, svc):
    seed_states(store, 6, _tags)
    env = svc.promote("env", "environment")
    svc.run_backfill(env["job_id"])
    pending = svc.trigger_backfill(env["facet_id"], 2, "FULL")
    assert pending == {"job_id": pending["job_id"], "status": "PENDING"}
    out = svc.disable(env["facet_id"], "deprecated")
    assert out["outstanding_backfill_jobs"] == [{"job_id": pending["job_id"], "status": "PENDING"}]
    assert svc.run_backfill(pending["job_id"])["status"] == "FAILED"
    # projector stopped: new writes leave the column alone
    store.record_result(result(50, {"env": "prod"}))
    with store.engine.connect() as conn:
        assert "environment" in ddl.state_columns(conn)
        assert (
            conn.exec_driver_sql("SELECT environment FROM partition_state WHERE customer_id = '1050'").scalar() is None
        )
    assert _rejected(store, svc.promote, "env", "other_col").code == "INVALID_ARGUMENT"
    again = svc.promote("env")
    assert again["facet_id"] == env["facet_id"] and again["column_name"] == "environment"
    assert again["status"] == "BACKFILLING"
    assert svc.backfill_status(again["job_id"])["mode"] == "FULL"
    svc.run_backfill(again["job_id"])
    (c,) = svc.compliance()["facets"]
    assert (c["null_with_tag"], c["drift"], c["rows_total"]) == (0, 0, 7)


def test_killed_backfill_resumes_to_exact_counts(store, svc):
    seed_states(store, 23, _tags)
    facet = svc.promote("env")
    job_id = svc.trigger_backfill(facet["facet_id"], 4, "FULL")["job_id"]
    calls = []

    def crash_after_two(job):
        calls.append(job["rows_processed"])
        if len(calls) == 2:
            raise RuntimeError("process died")

    with pytest.raises(RuntimeError):
        svc.run_backfill(job_id, progress=crash_after_two)
    mid = svc.backfill_status(job_id)
    assert (mid["status"], mid["rows_processed"], mid["batches"]) == ("RUNNING", 8, 2)
    assert mid["rows_total"] == 23 and mid["eta_seconds"] is not None
    seen = []
    done = svc.run_backfill(job_id, progress=lambda j: seen.append(j["rows_processed"]))
    assert seen[0] == 12  # resumed after the checkpoint
    assert (done["status"], done["rows_processed"], done["rows_total"], done["batches"]) == ("SUCCEEDED", 23, 23, 6)
    assert svc.run_backfill(job_id)["rows_processed"] == 23  # running a finished job does nothing
    assert svc.compliance()["facets"][0]["drift"] == 0


def test_backfill_key_ranges_are_exact(store):
    """A batch's range (lo, hi] (or [lo, hi]) selects exactly the keys between, whatever prefix
    lo and hi share (the range is rewritten as equalities plus shorter row comparisons)."""
    from datetime import date, timedelta

    import sqlalchemy as sa

    from gridcat_pipelines.run_ids import new_run_id
    from gridcat_pipelines.state import PartitionKey, ValidationResult
    from gridcat_pipelines.state.tables import KEY_COLUMNS, partition_state
    from gridcat_pipelines.tag_facets.backfill import _key_range

    keys = [
        PartitionKey(source, str(1000 + c), q, date(2026, 1, 1) + timedelta(days=d))
        for source in ("ads_a", "ads_b")
        for c in range(2)
        for q in ("qa", "qb")
        for d in range(2)
    ]
    store.record_results([ValidationResult(key=k, run_id=new_run_id(), status="success", record_count=1) for k in keys])
    ordered = sorted(k.as_tuple() for k in keys)
    cols = [partition_state.c[c] for c in KEY_COLUMNS]
    with store.engine.connect() as conn:
        for i, lo in enumerate(ordered):
            for hi in ordered[i:]:
                for inclusive in (False, True):
                    query = (
                        sa.select(*cols)
                        .where(*_key_range(partition_state, lo, hi, lo_inclusive=inclusive))
                        .order_by(*cols)
                    )
                    got = [tuple(r) for r in conn.execute(query)]
                    want = [k for k in ordered if (lo <= k if inclusive else lo < k) and k <= hi]
                    assert got == want, (lo, hi, inclusive)


def test_missing_only_touches_only_nulls(store, svc):
    seed_states(store, 12, _tags)
    facet = svc.promote("env")
    svc.run_backfill(facet["job_id"])
    with store.engine.begin() as conn:  # drift on two rows, holes on three (as if never projected)
        conn.exec_driver_sql("UPDATE partition_state SET env = 'wrong' WHERE customer_id IN ('1000', '1001')")
        conn.exec_driver_sql("UPDATE partition_state SET env = NULL WHERE customer_id IN ('1002', '1003', '1004')")
    before = svc.compliance()["facets"][0]
    assert (before["drift"], before["null_with_tag"]) == (2, 3)
    job = svc.run_backfill(svc.trigger_backfill(facet["facet_id"], 2, "MISSING_ONLY")["job_id"])
    assert (job["rows_total"], job["rows_processed"], job["rows_updated"]) == (3, 3, 3)
    after = svc.compliance()["facets"][0]
    assert (after["drift"], after["null_with_tag"]) == (2, 0)  # the drifted rows were not touched
    full = svc.run_backfill(svc.trigger_backfill(facet["facet_id"], 5, "FULL")["job_id"])
    assert (full["rows_processed"], full["rows_updated"]) == (12, 2)
    assert svc.compliance()["facets"][0]["drift"] == 0


def test_injection_in_filter_values_is_bound(store, svc):
    seed_states(store, 4, _tags)
    evil = "x' OR '1'='1"
    store.record_result(result(9, {"env": evil}))
    svc.run_backfill(svc.promote("env")["job_id"])
    assert [s.key.customer_id for s in store.list_states(filters=[eq("env", evil)]).states] == ["1009"]
    assert store.list_states(filters=[eq("env", "' OR 1=1 --")]).states == []


def test_page_tokens_bound_to_filters(store, svc):
    seed_states(store, 30, _tags)
    svc.run_backfill(svc.promote("env")["job_id"])
    page = store.list_states(filters=[eq("env", "prod")], page_size=3)
    assert page.next_page_token
    assert (
        _code(store.list_states, filters=[eq("env", "dev")], page_token=page.next_page_token).code == "INVALID_ARGUMENT"
    )
    assert _code(store.list_states, page_token=page.next_page_token).code == "INVALID_ARGUMENT"
    plain = store.list_states(page_size=3)
    assert (
        _code(store.list_states, filters=[eq("env", "prod")], page_token=plain.next_page_token).code
        == "INVALID_ARGUMENT"
    )
    assert (
        len(store.list_states(filters=[eq("env", "prod")], page_token=page.next_page_token, page_size=1000).states) == 7
    )
    assert len(store.list_states(filters=[eq("env", "prod")]).states) == 10  # default page size
    assert store.list_states(page_size=5000).states.__len__() == 30  # capped at 1000


def test_reserved_words_and_column_rule():
    assert {"select", "from", "where", "order", "user"} <= RESERVED_WORDS
    assert parse_column_name("team_2") == "team_2"
    with pytest.raises(GridcatError):
        parse_column_name("a" * 32)


@pytest.mark.postgres
def test_invalid_index_is_detected_and_rebuilt(pg_url):
    from gridcat_pipelines.state import StateStore

    store = StateStore.open(pg_url)
    try:
        svc = FacetService(store)
        svc.promote("env")
        index = "partition_state_facet_env_idx"
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE pg_index SET indisvalid = false WHERE indexrelid = '{index}'::regclass")
        assert ddl.index_state(store.engine, index) == "invalid"
        assert ddl.ensure_index(store.engine, "env", index) == "rebuilt"
        assert ddl.index_state(store.engine, index) == "valid"
        with store.engine.connect() as conn:
            definition = conn.exec_driver_sql(f"SELECT indexdef FROM pg_indexes WHERE indexname = '{index}'").scalar()
        assert "(env, source, customer_id, query_name, logical_date)" in definition
    finally:
        store.close()


def test_backfill_batches_are_sized_by_transaction_time():
    from gridcat_pipelines.tag_facets import backfill

    runner = backfill.BackfillRunner(None, "job", clock=None)
    target = backfill.TARGET_BATCH_SECONDS
    runner._adapt(10_000, target / 2)  # the first batch had FIRST_BATCH rows and took half the target
    assert runner.limit == 2 * backfill.FIRST_BATCH
    runner._adapt(10_000, target / 100)  # far faster: at most doubled, at most batch_size
    assert runner.limit == 4 * backfill.FIRST_BATCH
    runner._adapt(10_000, target * 1.25)
    assert runner.limit == int(4 * backfill.FIRST_BATCH / 1.25)
    for _ in range(20):  # slow batches: at most halved each time, never below MIN_BATCH
        before = runner.limit
        runner._adapt(10_000, target * 10)
        assert runner.limit == max(before // 2, backfill.MIN_BATCH)
    assert runner.limit == backfill.MIN_BATCH
    for _ in range(20):
        runner._adapt(10_000, 0.0)
    assert runner.limit == 10_000
    small = backfill.BackfillRunner(None, "job", clock=None)
    for seconds in (0.0, target * 10, target):
        small._adapt(4, seconds)  # a batch_size under MIN_BATCH is kept as it is
        assert small.limit == 4
