"""The state-store contract (with the catalog RPC conventions), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from gridcat_pipelines.errors import FAILED_PRECONDITION, INVALID_ARGUMENT, NOT_FOUND, GridcatError
from gridcat_pipelines.run_ids import new_run_id
from gridcat_pipelines.state import PartitionKey, StateFilter, StateStore, ValidationResult

KEY = PartitionKey.parse("123-456-7890", "campaign", "2026-11-01")


def ok(run_id: str, key: PartitionKey = KEY, **kw) -> ValidationResult:
    """A success result."""
    return ValidationResult(
        key=key, run_id=run_id, status="success", schema_version="1", record_count=kw.pop("record_count", 10), **kw
    )


def bad(run_id: str, key: PartitionKey = KEY, **kw) -> ValidationResult:
    """A failed result."""
    return ValidationResult(
        key=key,
        run_id=run_id,
        status="failed",
        schema_version="1",
        record_count=3,
        error_message=kw.pop("error_message", "business_rule.cost_non_negative: 3 rows"),
        **kw,
    )


def snapshot(store: StateStore) -> dict[str, list]:
    """Every row of every table, to prove a rejected call changed nothing."""
    out = {}
    with store.engine.connect() as conn:
        for table in ("partition_state", "partition_state_history", "state_change_counter", "idempotency_record"):
            out[table] = sorted(map(tuple, conn.exec_driver_sql(f"SELECT * FROM {table}").all()), key=repr)
    return out


def test_unknown_key_is_implicit_pending(store):
    state = store.get(KEY)
    assert state.status == "pending"
    assert state.current_run_id is None
    assert state.version == 0 and state.attempt_count == 0
    assert not state.exists
    assert store.history(KEY) == []


def test_success_makes_the_run_authoritative(store):
    run = new_run_id()
    out = store.record_result(ok(run, tags={"team": "core", "env": "prod"}))
    assert out.outcome == "applied"
    state = store.get(KEY)
    assert state == out.state
    assert (state.status, state.current_run_id, state.record_count, state.schema_version) == ("success", run, 10, "1")
    assert state.version == 1 and state.attempt_count == 1
    assert state.tags == {"env": "prod", "team": "core"}
    assert state.key.customer_id == "1234567890"


def test_failed_then_repull_moves_to_success(store):
    first, second = new_run_id(), new_run_id()
    store.record_result(bad(first))
    failed = store.get(KEY)
    assert (failed.status, failed.current_run_id) == ("failed", first)
    assert "cost_non_negative" in failed.error_message
    store.record_result(ok(second))
    state = store.get(KEY)
    assert (state.status, state.current_run_id, state.error_message) == ("success", second, None)
    assert state.attempt_count == 2 and state.version == 2


def test_late_result_for_older_run_is_superseded(store):
    old, new = new_run_id(), new_run_id()
    store.record_result(ok(new, record_count=20))
    out = store.record_result(bad(old))
    assert out.outcome == "superseded"
    state = store.get(KEY)
    assert (state.status, state.current_run_id, state.record_count, state.version) == ("success", new, 20, 1)
    assert [h.outcome for h in store.history(KEY)] == ["applied", "superseded"]
    assert store.last_change_seq() == 1


def test_same_result_twice_is_replayed_and_changes_nothing(store):
    run = new_run_id()
    first = store.record_result(ok(run))
    before = store.get(KEY)
    again = store.record_result(ok(run))
    assert again.outcome == "replayed"
    assert again.state == before == first.state
    assert store.get(KEY).version == 1 and store.get(KEY).attempt_count == 1
    assert [h.outcome for h in store.history(KEY)] == ["applied", "replayed"]
    assert store.last_change_seq() == 1


def test_new_verdict_on_the_current_run_applies(store):
    run = new_run_id()
    store.record_result(ok(run))
    out = store.record_result(bad(run))
    assert out.outcome == "applied"
    assert out.state.status == "failed" and out.state.version == 2
    assert out.state.attempt_count == 1, "the same run examined twice is one attempt"


def test_idempotency_key_returns_the_first_response(store):
    run = new_run_id()
    first = store.record_result(ok(run, idempotency_key="k-1"))
    store.record_result(bad(new_run_id()))  # the state moves on
    replay = store.record_result(ok(run, idempotency_key="k-1"))
    assert replay == first
    assert replay.outcome == "applied"
    assert len(store.history(KEY)) == 2, "a keyed retry is not a new offer"


def test_idempotency_key_reused_with_another_request_is_rejected(store):
    store.record_result(ok(new_run_id(), idempotency_key="k-2"))
    before = snapshot(store)
    with pytest.raises(GridcatError) as err:
        store.record_result(ok(new_run_id(), idempotency_key="k-2"))
    assert err.value.code == INVALID_ARGUMENT
    assert snapshot(store) == before


def test_expected_version_guards_writes(store):
    run = new_run_id()
    store.record_result(ok(run, expected_version=0))
    before = snapshot(store)
    with pytest.raises(GridcatError) as err:
        store.record_result(bad(new_run_id(), expected_version=0))
    assert err.value.code == FAILED_PRECONDITION
    assert err.value.details == [{"current_version": 1, "expected_version": 0}]
    assert snapshot(store) == before
    assert store.record_result(bad(new_run_id(), expected_version=1)).state.version == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"customer_id": "12a-3"},
        {"customer_id": ""},
        {"logical_date": "2026-02-30"},
        {"logical_date": "20261101"},
        {"run_id": "not-a-uuid"},
        {"run_id": "0190a2b4-1c2d-4e5f-8a6b-7c8d9e0f1a2b"},  # UUIDv4, not v7
        {"status": "pending"},
        {"status": "SUCCESS"},
        {"query_name": "Campaign; DROP TABLE partition_state"},
        {"record_count": -1},
        {"tags": {"team": 3}},
    ],
)
def test_bad_input_is_invalid_argument_and_writes_nothing(store, kwargs):
    fields = dict(
        customer_id="1234567890",
        query_name="campaign",
        logical_date="2026-11-01",
        run_id=new_run_id(),
        status="success",
        record_count=1,
    )
    fields.update(kwargs)
    before = snapshot(store)
    with pytest.raises(GridcatError) as err:
        store.record_result(ValidationResult.parse(**fields))
    assert err.value.code == INVALID_ARGUMENT
    assert snapshot(store) == before


def test_failed_needs_an_error_message(store):
    with pytest.raises(GridcatError) as err:
        store.record_result(ValidationResult(KEY, new_run_id(), "failed", record_count=1))
    assert err.value.code == INVALID_ARGUMENT


def test_a_bad_result_in_a_batch_writes_nothing(store):
    other = PartitionKey.parse("42", "campaign", "2026-11-02")
    before = snapshot(store)
    with pytest.raises(GridcatError):
        store.record_results([ok(new_run_id()), ok(new_run_id(), key=other, expected_version=5)])
    assert snapshot(store) == before


def test_batch_decides_in_order(store):
    old, new = new_run_id(), new_run_id()
    outcomes = store.record_results([ok(new), ok(old), ok(new), bad(new)])
    assert [o.outcome for o in outcomes] == ["applied", "superseded", "replayed", "applied"]
    assert [o.state.version for o in outcomes] == [1, 1, 1, 2]
    changes = store.changes_since(0)
    assert [(c.seq, c.version, c.status) for c in changes] == [(1, 1, "success"), (2, 2, "failed")]


def test_set_authoritative_repoints_with_precondition(store):
    good, worse = new_run_id(), new_run_id()
    store.record_result(ok(good, record_count=7, tags={"team": "core"}))
    store.record_result(bad(worse))
    state = store.set_authoritative(KEY, good, expected_version=2)
    assert (state.current_run_id, state.status, state.record_count, state.error_message) == (good, "success", 7, None)
    assert state.version == 3 and state.attempt_count == 2
    assert store.get(KEY) == state
    assert [h.outcome for h in store.history(KEY)] == ["applied", "applied", "repointed"]
    assert store.changes_since(2)[0].kind == "repointed"
    # the validator's retry of the newer run's same verdict does not undo the operator
    assert store.record_result(bad(worse)).outcome == "replayed"
    assert store.get(KEY).current_run_id == good


def test_set_authoritative_errors_change_nothing(store):
    run = new_run_id()
    store.record_result(ok(run))
    before = snapshot(store)
    cases = [
        (lambda: store.set_authoritative(KEY, run, expected_version=7), FAILED_PRECONDITION),
        (lambda: store.set_authoritative(KEY, new_run_id(), expected_version=1), NOT_FOUND),
        (lambda: store.set_authoritative(PartitionKey.parse("9", "campaign", "2026-11-01"), run, 0), NOT_FOUND),
        (lambda: store.set_authoritative(KEY, "nope", expected_version=1), INVALID_ARGUMENT),
        (lambda: store.set_authoritative(KEY, run, expected_version=-1), INVALID_ARGUMENT),
    ]
    for call, code in cases:
        with pytest.raises(GridcatError) as err:
            call()
        assert err.value.code == code
    assert snapshot(store) == before


def test_set_authoritative_with_idempotency_key_replays(store):
    a, b = new_run_id(), new_run_id()
    store.record_results([ok(a), ok(b, record_count=2)])
    first = store.set_authoritative(KEY, a, 2, idempotency_key="op-1")
    assert store.set_authoritative(KEY, a, 2, idempotency_key="op-1") == first
    with pytest.raises(GridcatError) as err:
        store.set_authoritative(KEY, b, 3, idempotency_key="op-1")
    assert err.value.code == INVALID_ARGUMENT
    assert store.get(KEY).version == 3


def _populate(store: StateStore) -> list[PartitionKey]:
    keys = [
        PartitionKey.parse(str(c), q, f"2026-11-{d:02d}")
        for c in (111, 222, 333)
        for q in ("ad_group", "campaign")
        for d in range(1, 6)
    ]
    store.record_results(
        [ok(new_run_id(), key=k) if k.logical_date.day % 2 else bad(new_run_id(), key=k) for k in keys]
    )
    return keys


def test_list_pages_visit_every_row_once_in_key_order(store):
    keys = _populate(store)
    seen, token, pages = [], None, 0
    while True:
        page = store.list_states(page_size=7, page_token=token)
        seen += [s.key for s in page.states]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(keys)
    assert pages == 5  # 30 rows in pages of 7


def test_list_filters(store):
    _populate(store)
    flt = StateFilter.parse(
        status="failed", customer_id="222", query_name="campaign", from_date="2026-11-02", to_date="2026-11-04"
    )
    page = store.list_states(flt, page_size=100)
    assert [(s.key.customer_id, s.key.logical_date.day, s.status) for s in page.states] == [
        ("222", 2, "failed"),
        ("222", 4, "failed"),
    ]
    assert page.next_page_token == ""


def test_page_tokens_are_tamper_evident_and_bound_to_filters(store):
    _populate(store)
    flt = StateFilter.parse(status="success")
    token = store.list_states(flt, page_size=2).next_page_token
    assert token
    head, _, mac = token.partition(".")
    forged = [
        token[:-2] + ("AA" if token[-2:] != "AA" else "BB"),
        head[:-1] + ("x" if head[-1] != "x" else "y") + "." + mac,
        "garbage",
        "",
    ]
    for bad_token in forged[:3]:
        with pytest.raises(GridcatError) as err:
            store.list_states(flt, page_size=2, page_token=bad_token)
        assert err.value.code == INVALID_ARGUMENT
    with pytest.raises(GridcatError) as err:
        store.list_states(StateFilter.parse(status="failed"), page_size=2, page_token=token)
    assert err.value.code == INVALID_ARGUMENT
    assert "other filters" in err.value.message


@pytest.mark.parametrize("size", [-1, 1.5, "3"])
def test_bad_page_size(store, size):
    with pytest.raises(GridcatError) as err:
        store.list_states(page_size=size)
    assert err.value.code == INVALID_ARGUMENT


def test_page_size_defaults_and_caps(store):
    keys = [PartitionKey.parse(str(c), "campaign", "2026-11-01") for c in range(1, 1102)]
    store.record_results([ok(new_run_id(), key=k) for k in keys])
    assert len(store.list_states().states) == 20
    assert len(store.list_states(page_size=5000).states) == 1000


def test_change_feed_reads_from_a_cursor(store):
    a, b = PartitionKey.parse("1", "campaign", "2026-11-01"), PartitionKey.parse("2", "campaign", "2026-11-01")
    store.record_results([ok(new_run_id(), key=a), ok(new_run_id(), key=b)])
    store.record_result(bad(new_run_id(), key=a))
    changes = store.changes_since(0)
    assert [(c.seq, c.key, c.version) for c in changes] == [(1, a, 1), (2, b, 1), (3, a, 2)]
    assert [c.seq for c in store.changes_since(2)] == [3]
    assert store.changes_since(3) == []
    assert [c.seq for c in store.changes_since(0, limit=2)] == [1, 2]
    with pytest.raises(GridcatError):
        store.changes_since(-1)


def test_injection_in_values_is_bound(store):
    key = PartitionKey.parse("1", "campaign", "2026-11-01")
    evil = "x'); DROP TABLE partition_state; --"
    store.record_result(bad(new_run_id(), key=key, error_message=evil, tags={"team": evil}))
    assert store.get(key).error_message == evil
    assert store.get(key).tags == {"team": evil}


def test_store_refuses_an_unmigrated_database(tmp_path):
    with pytest.raises(GridcatError) as err:
        StateStore.open(f"sqlite:///{tmp_path / 'empty.db'}")
    assert err.value.code == FAILED_PRECONDITION
    assert "gridcat db upgrade" in err.value.message


def test_timestamps_are_utc_aware(store):
    state = store.record_result(ok(new_run_id())).state
    assert state.updated_at.tzinfo is not None
    assert store.get(KEY).updated_at == state.updated_at
    assert state.to_json()["updated_at"].endswith("Z")


def test_batch_over_new_and_existing_keys(store):
    """One batch mixing new keys, updates of existing rows (twice for one key), a superseded
    and a replayed result: the same outcomes and states as offering them one by one."""
    a, b, c = (PartitionKey.parse(str(n), "campaign", "2026-11-01") for n in (7, 8, 9))
    old_b, run_a, run_b = new_run_id(), new_run_id(), new_run_id()
    store.record_results([ok(run_a, key=a, tags={"team": "core"}), ok(run_b, key=b)])
    later_a, last_a, run_c = new_run_id(), new_run_id(), new_run_id()
    outcomes = store.record_results(
        [
            bad(later_a, key=a),  # update, keeps tags (tags=None)
            ok(run_c, key=c, tags={"env": "prod"}),  # new key
            ok(old_b, key=b),  # older run than b's: superseded
            ok(last_a, key=a, record_count=5),  # a second update of a in the same batch
            ok(run_b, key=b),  # b's current result again: replayed
        ]
    )
    assert [o.outcome for o in outcomes] == ["applied", "applied", "superseded", "applied", "replayed"]
    states = store.get_many([a, b, c])
    assert (states[a].current_run_id, states[a].version, states[a].attempt_count) == (last_a, 3, 3)
    assert (states[a].status, states[a].record_count, states[a].tags) == ("success", 5, {"team": "core"})
    assert states[a] == outcomes[3].state
    assert (states[b].current_run_id, states[b].version) == (run_b, 1)
    assert (states[c].current_run_id, states[c].version, states[c].tags) == (run_c, 1, {"env": "prod"})
    assert [(ch.seq, ch.key, ch.version) for ch in store.changes_since(2)] == [(3, a, 2), (4, c, 1), (5, a, 3)]
    assert [h.outcome for h in store.history(b)] == ["applied", "superseded", "replayed"]


@pytest.mark.postgres
def test_a_pooled_connection_the_server_closed_is_replaced(pg_url):
    import sqlalchemy as sa

    store = StateStore.open(pg_url)
    try:
        store.record_result(ok(new_run_id()))
        with store.engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        admin = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)}, 5000)").scalar_one()
        admin.dispose()
        assert store.get(KEY).version == 1  # the dead pooled connection is not handed out
        assert store.record_result(ok(new_run_id())).outcome == "applied"
    finally:
        store.close()


def test_large_batch_over_existing_keys(store):
    """A batch too large to read history speculatively (PostgreSQL reads it after the locks,
    for the keys found) decides replays, supersedes and updates like a small one."""
    keys = [PartitionKey.parse(str(100 + n), "campaign", "2026-11-03") for n in range(20)]
    older = [new_run_id() for _ in keys]
    first = [new_run_id() for _ in keys]
    store.record_results([ok(run, key=key) for key, run in zip(keys, first)])
    newer = [new_run_id() for _ in keys]
    fresh = PartitionKey.parse("999", "campaign", "2026-11-03")
    batch = [ok(run, key=key) for key, run in zip(keys, first)]  # replays
    batch += [ok(run, key=key) for key, run in zip(keys, older)]  # superseded
    batch += [bad(run, key=key) for key, run in zip(keys, newer)]  # applied updates
    batch.append(ok(new_run_id(), key=fresh))
    outcomes = store.record_results(batch)
    assert [o.outcome for o in outcomes] == ["replayed"] * 20 + ["superseded"] * 20 + ["applied"] * 21
    states = store.get_many([*keys, fresh])
    assert all(
        (states[k].current_run_id, states[k].version, states[k].status) == (r, 2, "failed") for k, r in zip(keys, newer)
    )
    assert states[fresh].version == 1
    assert [c.seq for c in store.changes_since(20)] == list(range(21, 42))


@pytest.mark.postgres
def test_update_whose_row_id_does_not_match_writes_nothing(pg_url, monkeypatch):
    """PostgreSQL updates locked rows by row id; if one were not found, nothing is written."""
    from gridcat_pipelines.state import pg_write

    store = StateStore.open(pg_url)
    try:
        store.record_result(ok(new_run_id()))
        before = snapshot(store)
        read_batch = pg_write.read_batch

        def moved(*args, **kwargs):
            found = read_batch(*args, **kwargs)
            found.row_ids = {key: "(0,999)" for key in found.row_ids}
            return found

        monkeypatch.setattr(pg_write, "read_batch", moved)
        with pytest.raises(RuntimeError, match="row id"):
            store.record_result(ok(new_run_id()))
        assert snapshot(store) == before
    finally:
        store.close()
