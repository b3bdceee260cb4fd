"""The PostgreSQL warehouse target: round trip, atomic replace, loaded_slice, and the loader."""

from __future__ import annotations

import threading
from datetime import date

import adbc_driver_manager
import psycopg
import pyarrow as pa
import pytest

from gridcat_pipelines.errors import GridcatError
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.run_ids import new_run_id
from gridcat_pipelines.state import PartitionKey, StateStore, ValidationResult
from gridcat_pipelines.warehouse.loader import LOADED, load_partition
from gridcat_pipelines.warehouse.postgres_target import PostgresWarehouse, libpq_url

pytestmark = pytest.mark.postgres

CUSTOMER = "1234567890"
DAY = date(2026, 11, 20)
KEY = PartitionKey("google_ads", CUSTOMER, "campaign", DAY)


def _rows(n: int, offset: int = 0) -> pa.Table:
    return pa.table(
        {
            "customer_id": pa.array([int(CUSTOMER)] * n, pa.int64()),  # a feed column, not the slice column
            "campaign_id": pa.array(range(offset, offset + n), pa.int64()),
            "campaign_name": pa.array([None if i % 3 == 0 else f"c{i}" for i in range(n)], pa.string()),
            "segments_date": pa.array([DAY] * n, pa.date32()),
            "metrics_cost": pa.array([i * 0.5 for i in range(n)], pa.float64()),
            "active": pa.array([i % 2 == 0 for i in range(n)], pa.bool_()),
        }
    )


def _count(url: str, customer: str = CUSTOMER, day: date = DAY) -> tuple[int, set[str]]:
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT run_id FROM google_ads.campaign WHERE gridcat_customer_id = %s AND gridcat_logical_date = %s",
            (customer, day),
        ).fetchall()
    return len(rows), {r[0] for r in rows}


@pytest.fixture
def url(pg_databases) -> str:
    return pg_databases.create()


def test_round_trip_and_loaded_slice(url):
    wh = PostgresWarehouse(url)
    assert wh.loaded_slice("campaign", CUSTOMER, DAY) is None, "nothing loaded, no schema yet"
    first = new_run_id()
    loaded = wh.replace_slice("campaign", CUSTOMER, DAY, _rows(5), first)
    assert (loaded.run_id, loaded.rows) == (first, 5)
    assert "google_ads.campaign" in loaded.path and "@" not in loaded.path
    got = wh.read_slice("campaign", CUSTOMER, DAY).sort_by("campaign_id")
    expected = _rows(5).append_column("run_id", pa.array([first] * 5, pa.string()))
    assert got.equals(expected), (got.schema, expected.schema)
    assert wh.loaded_slice("campaign", CUSTOMER, DAY) == loaded

    # another slice of the same feed is untouched by a replace; a replace swaps run and rows
    other_day = date(2026, 11, 21)
    wh.replace_slice("campaign", CUSTOMER, other_day, _rows(2), first)
    second = new_run_id()
    wh.replace_slice("campaign", CUSTOMER, DAY, _rows(3, offset=100), second)
    assert _count(url) == (3, {second})
    assert _count(url, day=other_day) == (2, {first})
    assert wh.loaded_slice("campaign", CUSTOMER, DAY).rows == 3

    # an empty run loads as an empty slice, told apart from a missing one
    third = new_run_id()
    wh.replace_slice("campaign", CUSTOMER, DAY, _rows(0), third)
    assert wh.loaded_slice("campaign", CUSTOMER, DAY).run_id == third
    assert wh.loaded_slice("campaign", CUSTOMER, DAY).rows == 0
    assert wh.read_slice("campaign", CUSTOMER, DAY).num_rows == 0
    assert wh.loaded_slice("campaign", "999", DAY) is None


def test_loaded_slices_read_many_partitions_in_one_query_and_agree_with_one_by_one(url):
    """``loaded_slices`` (what ``warehouse status`` and reconcile use) answers what
    ``loaded_slice`` answers, partition by partition: loaded, empty, replaced, another feed's
    and missing; before any load, nothing."""
    from datetime import timedelta

    from gridcat_pipelines.state import PartitionState
    from gridcat_pipelines.warehouse.status import warehouse_status

    wh = PostgresWarehouse(url)
    days = [DAY - timedelta(days=n) for n in range(3)]
    partitions = [(c, d) for c in (CUSTOMER, "42") for d in days]
    assert wh.loaded_slices("campaign", partitions) == {}, "no schema yet"
    wh.replace_slice("campaign", CUSTOMER, days[0], _rows(3), new_run_id(), state_version=1)
    wh.replace_slice("campaign", CUSTOMER, days[1], _rows(0), new_run_id(), state_version=1)
    wh.replace_slice("campaign", CUSTOMER, days[0], _rows(5), new_run_id(), state_version=2)
    wh.replace_slice("ad_group", "42", days[2], _rows(2), new_run_id(), state_version=1)  # another feed
    bulk = wh.loaded_slices("campaign", partitions)
    one_by_one = {(c, d): wh.loaded_slice("campaign", c, d) for c, d in partitions}
    assert bulk == {k: v for k, v in one_by_one.items() if v is not None}
    assert sorted((k, v.rows, v.state_version) for k, v in bulk.items()) == [
        ((CUSTOMER, days[1]), 0, 1),
        ((CUSTOMER, days[0]), 5, 2),
    ]
    states = [PartitionState.implicit_pending(PartitionKey("google_ads", c, "campaign", d)) for c, d in partitions]
    assert warehouse_status(states, wh)["summary"]["held"] == 2


def test_a_later_load_skips_the_ddl_and_a_dropped_table_is_made_again(url, monkeypatch):
    """The DDL (schema, ``_slices``, the feed's table, new columns) runs once per feed and set of
    columns in a process. The fault: the feed's table is dropped under it. That load fails
    (its transaction rolls back), and the next one makes the table again and lands."""
    wh = PostgresWarehouse(url)
    calls: list[str] = []
    real = wh._ensure_table
    monkeypatch.setattr(wh, "_ensure_table", lambda conn, feed, schema: calls.append(feed) or real(conn, feed, schema))
    wh.replace_slice("campaign", CUSTOMER, DAY, _rows(2), new_run_id())
    wh.replace_slice("campaign", CUSTOMER, DAY, _rows(3), new_run_id())
    assert calls == ["campaign"]
    wider = _rows(2).append_column("metrics_clicks", pa.array([1, 2], pa.int64()))
    wh.replace_slice("campaign", CUSTOMER, DAY, wider, new_run_id())
    assert calls == ["campaign", "campaign"], "a new column runs the DDL"
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("DROP TABLE google_ads.campaign")
    with pytest.raises(adbc_driver_manager.Error):
        wh.replace_slice("campaign", CUSTOMER, DAY, wider, new_run_id())
    run = new_run_id()
    assert wh.replace_slice("campaign", CUSTOMER, DAY, wider, run).run_id == run
    assert len(calls) == 3 and _count(url) == (2, {run})


def test_loads_reuse_adbc_connections_and_a_dropped_one_is_replaced(url, monkeypatch):
    """Opening an ADBC connection costs ~90 ms, so loads reuse them. Faults: the server drops
    the idle kept connections (as a restart or an idle timeout would), and a commit fails. The
    next load gets a live connection and lands; a connection that saw an error is not kept."""
    import adbc_driver_postgresql.dbapi as adbc_pg

    from gridcat_pipelines.warehouse import adbc_pool

    opened: list[int] = []
    real = adbc_pg.connect
    monkeypatch.setattr(adbc_pool.adbc_pg, "connect", lambda *a, **k: opened.append(1) or real(*a, **k))
    failing = {"on": False}

    def before_commit() -> None:
        if failing["on"]:
            raise RuntimeError("injected: the commit fails")

    wh = PostgresWarehouse(url, before_commit=before_commit)
    for n in range(3):
        wh.replace_slice("campaign", CUSTOMER, DAY, _rows(n + 1), new_run_id())
    wh.read_slice("campaign", CUSTOMER, DAY)
    assert len(opened) == 1, "one connection served three loads and a read"

    with psycopg.connect(libpq_url(url), autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    run = new_run_id()
    assert wh.replace_slice("campaign", CUSTOMER, DAY, _rows(4), run).run_id == run
    assert len(opened) == 2 and _count(url) == (4, {run}), "the dropped connection was replaced"

    failing["on"] = True
    with pytest.raises(RuntimeError, match="injected"):
        wh.replace_slice("campaign", CUSTOMER, DAY, _rows(9), new_run_id())
    failing["on"] = False
    assert _count(url) == (4, {run}), "the failed load rolled back"
    wh.replace_slice("campaign", CUSTOMER, DAY, _rows(5), new_run_id())
    assert len(opened) == 3, "the connection of the failed load was closed, not kept"


def test_table_layout_index_and_new_columns(url):
    wh = PostgresWarehouse(url)
    wh.replace_slice("campaign", CUSTOMER, DAY, _rows(1), new_run_id())
    wider = _rows(2).append_column("metrics_clicks", pa.array([1, 2], pa.int64()))
    wh.replace_slice("campaign", CUSTOMER, DAY, wider, new_run_id())
    with psycopg.connect(libpq_url(url)) as conn:
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'google_ads' AND table_name = 'campaign'"
            ).fetchall()
        )
        indexes = [
            r[0]
            for r in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = 'google_ads' AND tablename = 'campaign'"
            )
        ]
    assert types["customer_id"] == "bigint" and types["segments_date"] == "date"
    assert types["metrics_cost"] == "double precision" and types["active"] == "boolean"
    assert types["metrics_clicks"] == "bigint", "a column a newer schema adds is added"
    assert types["run_id"] == types["gridcat_customer_id"] == "text"
    assert any("(gridcat_customer_id, gridcat_logical_date)" in i for i in indexes)
    assert wh.read_slice("campaign", CUSTOMER, DAY).column("metrics_clicks").to_pylist() == [1, 2]


def test_bad_names_are_rejected(url):
    wh = PostgresWarehouse(url)
    with pytest.raises(GridcatError):
        wh.replace_slice('campaign"; DROP TABLE x; --', CUSTOMER, DAY, _rows(1), new_run_id())
    with pytest.raises(GridcatError):
        wh.replace_slice("campaign", CUSTOMER, DAY, pa.table({"run_id": ["x"]}), new_run_id())
    with pytest.raises(GridcatError):
        wh.replace_slice("campaign", CUSTOMER, DAY, pa.table({'a"b': [1]}), new_run_id())


def test_failure_mid_copy_rolls_back_to_the_old_slice(url):
    wh = PostgresWarehouse(url)
    old = new_run_id()
    wh.replace_slice("campaign", CUSTOMER, DAY, _rows(4), old)
    bad = _rows(3).set_column(1, "campaign_id", pa.array(["1", "2", "not a number"], pa.string()))
    with pytest.raises(adbc_driver_manager.Error, match="COPY"):  # binary COPY refuses text for a BIGINT
        wh.replace_slice("campaign", CUSTOMER, DAY, bad, new_run_id())
    assert _count(url) == (4, {old})
    assert wh.loaded_slice("campaign", CUSTOMER, DAY).run_id == old


def test_a_concurrent_reader_sees_the_old_or_the_new_slice(url):
    """While a replace holds its transaction open after the COPY, a reader on another
    connection sees the whole old slice; after the commit, the whole new one."""
    old, new = new_run_id(), new_run_id()
    PostgresWarehouse(url).replace_slice("campaign", CUSTOMER, DAY, _rows(4), old)
    copied, release = threading.Event(), threading.Event()

    def hold():
        copied.set()
        assert release.wait(30)

    slow = PostgresWarehouse(url, before_commit=hold)
    errors: list[BaseException] = []

    def run():
        try:
            slow.replace_slice("campaign", CUSTOMER, DAY, _rows(7, offset=50), new)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    writer = threading.Thread(target=run)
    writer.start()
    try:
        assert copied.wait(30)
        reader = PostgresWarehouse(url)
        assert _count(url) == (4, {old}), "mid-replace: the old slice, whole"
        assert reader.loaded_slice("campaign", CUSTOMER, DAY).run_id == old
        assert reader.read_slice("campaign", CUSTOMER, DAY).num_rows == 4
    finally:
        release.set()
        writer.join(30)
    assert not errors, errors
    assert _count(url) == (7, {new})
    assert PostgresWarehouse(url).loaded_slice("campaign", CUSTOMER, DAY).run_id == new


def test_concurrent_replaces_of_one_slice_do_not_mix(url):
    PostgresWarehouse(url).replace_slice("campaign", CUSTOMER, DAY, _rows(1), new_run_id())  # create the table
    runs = [new_run_id() for _ in range(6)]
    threads = [
        threading.Thread(
            target=PostgresWarehouse(url).replace_slice,
            args=("campaign", CUSTOMER, DAY, _rows(5 + i, offset=10 * i), run),
        )
        for i, run in enumerate(runs)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    count, held = _count(url)
    loaded = PostgresWarehouse(url).loaded_slice("campaign", CUSTOMER, DAY)
    assert held == {loaded.run_id} and count == loaded.rows == 5 + runs.index(loaded.run_id)


def test_load_partition_with_the_postgres_target(url, pg_databases, tmp_path):
    state_url = pg_databases.create()
    store = StateStore.open(state_url, upgrade=True)
    try:
        sink = RawSink(str(tmp_path / "raw"))
        wh = PostgresWarehouse(url)
        first = sink.write_run(KEY, [_rows(6).to_batches()[0]], schema_version="1").run_id
        store.record_result(ValidationResult(KEY, first, "success", "1", 6))
        outcome = load_partition(store, sink, wh, KEY, first)
        assert outcome.status == LOADED and outcome.slice.rows == 6
        assert wh.loaded_slice("campaign", CUSTOMER, DAY).run_id == first
        assert wh.read_slice("campaign", CUSTOMER, DAY).column("run_id").unique().to_pylist() == [first]

        second = sink.write_run(KEY, [_rows(2).to_batches()[0]], schema_version="1").run_id
        store.record_result(ValidationResult(KEY, second, "failed", "1", 2, "cost_non_negative: 1 row"))
        skipped = load_partition(store, sink, wh, KEY, second)
        assert skipped.status != LOADED
        assert wh.loaded_slice("campaign", CUSTOMER, DAY).run_id == first, "the last good slice is held"

        missing = new_run_id()  # authoritative, but its raw run is gone: fail, warehouse unchanged
        store.record_result(ValidationResult(KEY, missing, "success", "1", 3))
        with pytest.raises(GridcatError):
            load_partition(store, sink, wh, KEY, missing)
        assert _count(url) == (6, {first})
    finally:
        store.close()
