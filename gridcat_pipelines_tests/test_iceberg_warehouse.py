"""The Iceberg warehouse target (pyiceberg, SQL catalog): layout, one commit per partition
replace, metadata-only status, concurrent loaders, readers, snapshot retention, DuckDB, the
catalog from pyiceberg's configuration, and the loader end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from gridcat_pipelines.errors import FAILED_PRECONDITION, INVALID_ARGUMENT, GridcatError
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.run_ids import new_run_id
from gridcat_pipelines.state import PartitionKey, ValidationResult
from gridcat_pipelines.warehouse.iceberg_target import NAMESPACE, SUMMARY, IcebergWarehouse
from gridcat_pipelines.warehouse.loader import LOADED, SKIPPED_SUPERSEDED, load_partition

REPO = Path(__file__).resolve().parents[1]
CUSTOMER = "1234567890"
DAY = date(2026, 11, 20)


def rows(n: int, offset: int = 0, customer: str = CUSTOMER) -> pa.Table:
    return pa.table(
        {
            "customer_id": pa.array([int(customer)] * n, pa.int64()),
            "campaign_id": pa.array(range(offset, offset + n), pa.int64()),
            "campaign_name": pa.array([None if i % 3 == 0 else f"c{i}" for i in range(n)], pa.string()),
            "segments_date": pa.array([DAY] * n, pa.date32()),
            "metrics_cost": pa.array([i * 0.5 for i in range(n)], pa.float64()),
        }
    )


@pytest.fixture
def wh(tmp_path) -> IcebergWarehouse:
    return IcebergWarehouse.open(tmp_path)


def all_at_once(load: Callable[[int, threading.Barrier], None], loaders: int) -> list[BaseException]:
    """Run ``load(n, barrier)`` for ``n`` in ``range(loaders)``, each in its own thread (the
    loaders meet at ``barrier`` where they choose); what they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(loaders)

    def run(n: int) -> None:
        try:
            load(n, barrier)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(loaders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def table_dir(wh: IcebergWarehouse, feed: str = "campaign") -> Path:
    """The local directory of a feed's table."""
    return Path(wh.table(feed).location().removeprefix("file://"))


def age_table_files(wh: IcebergWarehouse, days: float = 2, pattern: str = "*") -> None:
    """Set the modification time of the table's files matching ``pattern`` to ``days`` ago."""
    then = (datetime.now(UTC) - timedelta(days=days)).timestamp()
    for path in table_dir(wh).rglob(pattern):
        os.utime(path, (then, then))


def test_layout_round_trip_and_loaded_slice(wh, tmp_path):
    assert wh.loaded_slice("campaign", CUSTOMER, DAY) is None
    assert (tmp_path / "iceberg" / "catalog.db").exists()
    first = new_run_id()
    loaded = wh.replace_slice("campaign", CUSTOMER, DAY, rows(5), first, state_version=1)
    assert (loaded.run_id, loaded.rows, loaded.state_version) == (first, 5, 1)
    table = wh.table("campaign")
    assert table.name() == (NAMESPACE, "campaign")
    assert [f.name for f in table.spec().fields] == ["customer_id", "logical_date"]
    assert [str(f.transform) for f in table.spec().fields] == ["identity", "identity"]
    assert table.schema().column_names == [*rows(0).column_names, "run_id", "logical_date"]
    got = wh.read_slice("campaign", CUSTOMER, DAY).sort_by("campaign_id")
    assert got.select(rows(0).column_names).to_pylist() == rows(5).to_pylist()
    assert set(got.column("run_id").to_pylist()) == {first}
    assert wh.loaded_slice("campaign", CUSTOMER, DAY) == loaded

    other_day, second = DAY + timedelta(days=1), new_run_id()
    wh.replace_slice("campaign", CUSTOMER, other_day, rows(2), first, state_version=1)
    wh.replace_slice("campaign", CUSTOMER, DAY, rows(3, offset=100), second, state_version=2)
    assert wh.loaded_slice("campaign", CUSTOMER, DAY).rows == 3
    assert (
        wh.loaded_slice("campaign", CUSTOMER, other_day).run_id,
        wh.read_slice("campaign", CUSTOMER, other_day).num_rows,
    ) == (first, 2)

    third = new_run_id()  # an empty run loads as an empty slice, told from a missing one
    wh.replace_slice("campaign", CUSTOMER, DAY, rows(0), third, state_version=3)
    empty = wh.loaded_slice("campaign", CUSTOMER, DAY)
    assert (empty.run_id, empty.rows, empty.state_version) == (third, 0, 3)
    assert wh.read_slice("campaign", CUSTOMER, DAY).num_rows == 0
    assert wh.loaded_slice("campaign", "999", DAY) is None


def test_one_commit_per_replace_with_the_partition_in_its_summary(wh):
    wh.replace_slice("campaign", CUSTOMER, DAY, rows(2), new_run_id(), state_version=1)
    before = wh.table("campaign")
    run = new_run_id()
    wh.replace_slice("campaign", CUSTOMER, DAY, rows(4), run, state_version=7)
    after = wh.table("campaign")
    assert len(after.metadata.metadata_log) == len(before.metadata.metadata_log) + 1, "one catalog commit"
    summary = after.current_snapshot().summary.additional_properties
    assert {summary[SUMMARY[k]] for k in ("customer", "day", "run", "version", "rows")} == {
        CUSTOMER,
        DAY.isoformat(),
        run,
        "7",
        "4",
    }


def test_rows_of_another_account_or_reserved_columns_are_refused(wh):
    with pytest.raises(GridcatError) as err:
        wh.replace_slice("campaign", CUSTOMER, DAY, rows(2, customer="42"), new_run_id())
    assert err.value.code == INVALID_ARGUMENT
    with pytest.raises(GridcatError):
        wh.replace_slice("campaign", CUSTOMER, DAY, pa.table({"run_id": ["x"]}), new_run_id())
    with pytest.raises(GridcatError):
        wh.replace_slice('campaign"; drop', CUSTOMER, DAY, rows(1), new_run_id())
    assert wh.loaded_slice("campaign", CUSTOMER, DAY) is None


def test_a_feed_without_customer_id_gets_the_partition_column(wh):
    run = new_run_id()
    wh.replace_slice("account", CUSTOMER, DAY, pa.table({"x": [1, 2]}), run)
    assert wh.read_slice("account", CUSTOMER, DAY).column("customer_id").to_pylist() == [int(CUSTOMER)] * 2


def test_status_is_read_from_metadata_not_data_files(wh, tmp_path):
    run = new_run_id()
    wh.replace_slice("campaign", CUSTOMER, DAY, rows(6), run, state_version=2)
    data_files = [p for p in (tmp_path / "iceberg" / "warehouse").rglob("*.parquet") if "/data/" in str(p)]
    assert data_files
    for path in data_files:  # no data file is left to read
        path.unlink()
    loaded = wh.loaded_slice("campaign", CUSTOMER, DAY)
    assert (loaded.run_id, loaded.rows, loaded.state_version) == (run, 6, 2)


def test_a_lower_state_version_never_replaces_a_higher_one(wh):
    newer, older = new_run_id(), new_run_id()
    wh.replace_slice("campaign", CUSTOMER, DAY, rows(2), newer, state_version=4)
    assert wh.stage_slice("campaign", CUSTOMER, DAY, rows(9), older, 3).commit() is None
    with pytest.raises(GridcatError) as err:
        wh.replace_slice("campaign", CUSTOMER, DAY, rows(9), older, state_version=3)
    assert err.value.code == FAILED_PRECONDITION
    assert (wh.loaded_slice("campaign", CUSTOMER, DAY).run_id, wh.read_slice("campaign", CUSTOMER, DAY).num_rows) == (
        newer,
        2,
    )


def test_concurrent_loaders_of_one_table_all_commit(wh):
    """Eight threads replace eight partitions of one table at once: every commit conflict is
    staged again and retried, and every partition ends with its own run."""
    wh.replace_slice("campaign", CUSTOMER, DAY, rows(1), new_run_id())  # the table exists
    runs = {n: new_run_id() for n in range(8)}

    def load(n: int, barrier: threading.Barrier) -> None:
        staged = wh.stage_slice("campaign", CUSTOMER, DAY + timedelta(days=n + 1), rows(n + 1), runs[n], 1)
        barrier.wait()
        assert staged.commit() is not None

    assert all_at_once(load, len(runs)) == []
    for n, run in runs.items():
        loaded = wh.loaded_slice("campaign", CUSTOMER, DAY + timedelta(days=n + 1))
        assert (loaded.run_id, loaded.rows) == (run, n + 1)


def test_a_first_load_that_loses_the_namespace_race_still_loads(wh, monkeypatch):
    """The SQL catalog checks for the namespace, then inserts it: another first load that
    inserts in between makes the insert fail (IntegrityError). The load still lands."""
    other = IcebergWarehouse(wh.catalog)
    other.replace_slice("campaign", CUSTOMER, DAY, rows(1), new_run_id())  # the other loader won
    real_exists = type(wh.catalog).namespace_exists
    checks: list[str] = []

    def exists(self, namespace) -> bool:  # the first check ran before the other loader's insert
        checks.append(namespace)
        return len(checks) > 1 and real_exists(self, namespace)

    monkeypatch.setattr(type(wh.catalog), "namespace_exists", exists)
    monkeypatch.setattr(wh, "table", lambda query_name: None)  # nor did it see the table yet
    run = new_run_id()
    staged = wh.stage_slice("campaign", CUSTOMER, DAY + timedelta(days=1), rows(3), run, 1)
    monkeypatch.undo()
    assert len(checks) >= 2  # the catalog's own (stale) check, then the ones after its insert failed
    assert staged.commit() is not None
    assert wh.loaded_slice("campaign", CUSTOMER, DAY + timedelta(days=1)).run_id == run


def test_a_load_with_a_new_column_adds_it_to_the_table(wh):
    """A query that gains a column: the next load adds it (older partitions read it as null)."""
    wh.replace_slice("campaign", CUSTOMER, DAY, rows(2), new_run_id())
    wider = rows(3).append_column("metrics_clicks", pa.array([7, 8, 9], pa.int64()))
    wh.replace_slice("campaign", CUSTOMER, DAY + timedelta(days=1), wider, new_run_id())
    assert "metrics_clicks" in wh.table("campaign").schema().column_names
    assert wh.read_slice("campaign", CUSTOMER, DAY + timedelta(days=1))["metrics_clicks"].to_pylist() == [7, 8, 9]
    assert wh.read_slice("campaign", CUSTOMER, DAY)["metrics_clicks"].to_pylist() == [None, None]


@pytest.mark.parametrize("round_", range(3))
def test_first_loads_racing_on_a_new_catalog_all_land(tmp_path, round_):
    """Eight loaders make the first load of one table on an empty catalog at once (namespace,
    table and a column one of them adds, all created concurrently): all of them land."""
    wh = IcebergWarehouse.open(tmp_path)
    runs = {n: new_run_id() for n in range(8)}

    def load(n: int, barrier: threading.Barrier) -> None:
        data = rows(n + 1)
        if n % 2:
            data = data.append_column("metrics_clicks", pa.array([n] * (n + 1), pa.int64()))
        barrier.wait()
        wh.replace_slice("campaign", CUSTOMER, DAY + timedelta(days=n), data, runs[n], 1)

    assert all_at_once(load, len(runs)) == []
    assert "metrics_clicks" in wh.table("campaign").schema().column_names
    for n, run in runs.items():
        loaded = wh.loaded_slice("campaign", CUSTOMER, DAY + timedelta(days=n))
        assert (loaded.run_id, loaded.rows) == (run, n + 1)


def test_a_reader_never_sees_half_a_partition(wh):
    """Loads swap the partition between a 300-row run and a 7-row run while a reader scans it:
    every scan sees all rows of exactly one run."""
    a, b = new_run_id(), new_run_id()
    wh.replace_slice("campaign", CUSTOMER, DAY, rows(300), a, state_version=1)
    stop = threading.Event()
    seen: list[tuple[set, int]] = []

    def reader() -> None:
        while not stop.is_set():
            got = wh.read_slice("campaign", CUSTOMER, DAY)
            seen.append((set(got.column("run_id").to_pylist()), got.num_rows))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for version in range(2, 12):
            run, n = (b, 7) if version % 2 else (a, 300)
            wh.replace_slice("campaign", CUSTOMER, DAY, rows(n), run, state_version=version)
    finally:
        stop.set()
        thread.join()
    assert seen and all(s in (({a}, 300), ({b}, 7)) for s in seen), {(frozenset(r), n) for r, n in seen}


def test_expire_snapshots_keeps_the_current_one(wh):
    for version in range(1, 5):
        wh.replace_slice("campaign", CUSTOMER, DAY, rows(version), new_run_id(), state_version=version)
    table = wh.table("campaign")
    before, current = len(table.snapshots()), table.metadata.current_snapshot_id
    future = datetime.now(UTC) + timedelta(days=1)
    assert wh.expire_snapshots(future, dry_run=True) == {"campaign": before - 1}
    assert len(wh.table("campaign").snapshots()) == before
    assert wh.expire_snapshots(future) == {"campaign": before - 1}
    table = wh.table("campaign")
    assert [s.snapshot_id for s in table.snapshots()] == [current]
    assert wh.read_slice("campaign", CUSTOMER, DAY).num_rows == 4
    assert wh.loaded_slice("campaign", CUSTOMER, DAY).rows == 4


def _files_under(wh: IcebergWarehouse) -> set[str]:
    return {str(p) for p in table_dir(wh).rglob("*") if p.is_file()}


def _data_files_of(table) -> set[str]:
    return {task.file.file_path.removeprefix("file://") for task in table.scan().plan_files()}


def test_files_of_expired_snapshots_and_of_aborted_loads_are_removed(wh):
    """Expiring snapshots leaves their files on disk (pyiceberg drops them from the metadata
    only). A staged load that never commits (fenced out, lost, killed) leaves files no snapshot
    names. The sweep removes both once they are older than its cut-off, keeps young ones (a load
    in flight), and every file the kept snapshot needs is still there."""
    for version in range(1, 5):
        wh.replace_slice("campaign", CUSTOMER, DAY, rows(version), new_run_id(), state_version=version)
    aborted = wh.stage_slice("campaign", CUSTOMER, DAY + timedelta(days=1), rows(9), new_run_id(), 1)
    aborted.abort()  # its data file is written, never committed
    files_before = _files_under(wh)
    wh.expire_snapshots(datetime.now(UTC) + timedelta(days=1))
    assert _files_under(wh) >= files_before, "expiring snapshots alone frees nothing"
    files_before = _files_under(wh)  # and a new metadata file
    current = _data_files_of(wh.table("campaign"))

    past = datetime.now(UTC) - timedelta(hours=1)
    assert wh.remove_unreferenced_files(past)["campaign"].files == 0, "young files stay: a load may be committing them"
    future = datetime.now(UTC) + timedelta(days=1)
    dry = wh.remove_unreferenced_files(future, dry_run=True)["campaign"]
    assert dry.files >= 4 and _files_under(wh) == files_before  # 3 replaced data files + the aborted one, manifests
    done = wh.remove_unreferenced_files(future)["campaign"]
    assert (done.files, done.bytes) == (dry.files, dry.bytes) and done.bytes > 0
    left = _files_under(wh)
    assert len(left) == len(files_before) - done.files
    assert current <= left, "the current snapshot's data files are kept"
    assert sum(1 for f in left if f.endswith(".parquet")) == len(current)
    fresh = IcebergWarehouse.open(Path(wh.table("campaign").location().removeprefix("file://")).parents[3])
    assert fresh.read_slice("campaign", CUSTOMER, DAY).num_rows == 4
    assert wh.table("campaign").scan().to_arrow().num_rows == 4
    assert wh.remove_unreferenced_files(future)["campaign"].files == 0, "a second sweep finds nothing"


def test_a_sweep_while_a_load_is_in_flight_leaves_that_load_whole(wh):
    """A load has written its data files and not committed yet when retention sweeps (with the
    CLI's least age, 1 hour): its files are young and stay, and its commit reads whole."""
    wh.replace_slice("campaign", CUSTOMER, DAY, rows(2), new_run_id(), state_version=1)
    run = new_run_id()
    in_flight = wh.stage_slice("campaign", CUSTOMER, DAY, rows(6), run, 2)
    swept = wh.remove_unreferenced_files(datetime.now(UTC) - timedelta(hours=1))
    assert swept["campaign"].files == 0
    assert in_flight.commit() is not None
    loaded = wh.loaded_slice("campaign", CUSTOMER, DAY)
    assert (loaded.run_id, loaded.rows) == (run, 6)
    assert wh.read_slice("campaign", CUSTOMER, DAY).num_rows == 6


def test_a_load_stalled_past_the_sweep_age_is_written_again_before_it_commits(wh, monkeypatch):
    """The fault: a loader stages its overwrite, then stalls for two days; meanwhile retention
    sweeps and deletes the staged (unreferenced, now old) data files. When the loader wakes up,
    its commit writes the files again first: the committed partition reads whole."""
    from gridcat_pipelines.warehouse import iceberg_target

    wh.replace_slice("campaign", CUSTOMER, DAY, rows(2), new_run_id(), state_version=1)
    run = new_run_id()
    stalled = wh.stage_slice("campaign", CUSTOMER, DAY, rows(6), run, 2)
    age_table_files(wh, days=2, pattern="*.parquet")
    two_days = timedelta(days=2).total_seconds()
    swept = wh.remove_unreferenced_files(datetime.now(UTC) - timedelta(days=1))["campaign"]
    assert swept.files >= 1, "the stalled load's data file was swept"
    real = iceberg_target._clock
    monkeypatch.setattr(iceberg_target, "_clock", lambda: real() + two_days)
    assert stalled.commit() is not None
    loaded = wh.loaded_slice("campaign", CUSTOMER, DAY)
    assert (loaded.run_id, loaded.rows) == (run, 6)
    assert wh.read_slice("campaign", CUSTOMER, DAY).num_rows == 6


def test_a_dry_run_counts_what_expiry_then_sweep_deletes(wh):
    """``gridcat retention --dry-run`` on Iceberg: the files it says it would delete include those
    the snapshot expiry would free, and are exactly what the real run then deletes."""
    from gridcat_pipelines.warehouse.maintenance import apply_warehouse_retention

    for version in range(1, 5):
        wh.replace_slice("campaign", CUSTOMER, DAY, rows(version), new_run_id(), state_version=version)
    wh.stage_slice("campaign", CUSTOMER, DAY + timedelta(days=1), rows(9), new_run_id(), 1).abort()
    age_table_files(wh, days=2)
    freed_now = wh.remove_unreferenced_files(datetime.now(UTC) - timedelta(days=1), dry_run=True)["campaign"]
    dry = apply_warehouse_retention(wh, snapshot_days=0, orphan_days=1, dry_run=True)
    assert len(wh.table("campaign").snapshots()) > 1, "a dry run expires nothing"
    real = apply_warehouse_retention(wh, snapshot_days=0, orphan_days=1)
    assert dry.expired == real.expired and dry.removed == real.removed
    assert real.removed["campaign"].files > freed_now.files >= 1, "the expiry frees more than the aborted load"
    assert wh.read_slice("campaign", CUSTOMER, DAY).num_rows == 4


def test_the_sweep_keeps_every_file_of_every_kept_snapshot(wh):
    """Snapshots not expired keep their files: time travel to each of them still reads."""
    for version in range(1, 4):
        wh.replace_slice("campaign", CUSTOMER, DAY, rows(version), new_run_id(), state_version=version)
    table = wh.table("campaign")
    before = {s.snapshot_id: table.scan(snapshot_id=s.snapshot_id).to_arrow().num_rows for s in table.snapshots()}
    assert sorted(set(before.values()) - {0}) == [1, 2, 3]
    assert wh.remove_unreferenced_files(datetime.now(UTC) + timedelta(days=1))["campaign"].files == 0
    table = wh.table("campaign")
    assert {s: table.scan(snapshot_id=s).to_arrow().num_rows for s in before} == before


def test_duckdb_reads_exactly_the_authoritative_rows(store, tmp_path):
    """The loader puts the authoritative run in; DuckDB, reading the table through its catalog
    (pyiceberg's scan handed to DuckDB), gets exactly that run's rows."""
    sink = RawSink(str(tmp_path / "raw"))
    wh = IcebergWarehouse.open(tmp_path)
    key = PartitionKey("google_ads", CUSTOMER, "campaign", DAY)
    runs = []
    for n in (4, 6):
        meta = sink.write_run(key, rows(n).to_batches(), schema_version="1")
        store.record_result(
            ValidationResult.parse(
                customer_id=CUSTOMER,
                query_name="campaign",
                logical_date=DAY.isoformat(),
                run_id=meta.run_id,
                status="success",
                record_count=n,
            )
        )
        runs.append(meta.run_id)
    assert load_partition(store, sink, wh, key, runs[0], version=1).status == SKIPPED_SUPERSEDED
    assert load_partition(store, sink, wh, key).status == LOADED
    fresh = IcebergWarehouse.open(tmp_path).table("campaign")  # a new reader of the catalog
    con = fresh.scan().to_duckdb("campaign")
    got = con.execute(
        "SELECT run_id, count(*), sum(campaign_id) FROM campaign WHERE customer_id = ? AND logical_date = ? GROUP BY run_id",
        [int(CUSTOMER), DAY],
    ).fetchall()
    assert got == [(runs[1], 6, sum(range(6)))]
    assert isinstance(con, duckdb.DuckDBPyConnection)


@pytest.mark.postgres
def test_the_catalog_comes_from_pyiceberg_configuration(tmp_path, pg_url):
    """PYICEBERG_CATALOG__GRIDCAT__* (pyiceberg's own settings) pick the catalog: here a SQL
    catalog on PostgreSQL, the production shape; nothing is written under GRIDCAT_HOME."""
    uri = pg_url.replace("postgresql://", "postgresql+psycopg://", 1) if pg_url.startswith("postgresql://") else pg_url
    code = (
        "import sys, datetime, pyarrow as pa\n"
        "from pathlib import Path\n"
        "from gridcat_pipelines.warehouse.iceberg_target import IcebergWarehouse\n"
        "wh = IcebergWarehouse.open(Path(sys.argv[1]))\n"
        "wh.replace_slice('campaign', '7', datetime.date(2026, 11, 1), pa.table({'x': [1]}), sys.argv[2])\n"
        "print(type(wh.catalog).__name__, wh.catalog.properties['uri'].split('://')[0])\n"
    )
    env = {
        **os.environ,
        "PYICEBERG_CATALOG__GRIDCAT__TYPE": "sql",
        "PYICEBERG_CATALOG__GRIDCAT__URI": uri,
        "PYICEBERG_CATALOG__GRIDCAT__WAREHOUSE": f"file://{tmp_path / 'lake'}",
    }
    run = new_run_id()
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "home"), run],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["SqlCatalog", "postgresql+psycopg"]
    assert not (tmp_path / "home" / "iceberg").exists()
    assert list((tmp_path / "lake").rglob("*.parquet"))


def test_cli_retention_expires_warehouse_snapshots(tmp_path, sqlite_url):
    wh = IcebergWarehouse.open(tmp_path)
    for version in range(1, 4):
        wh.replace_slice("campaign", CUSTOMER, DAY, rows(version), new_run_id(), state_version=version)
    env = {
        **os.environ,
        "GRIDCAT_HOME": str(tmp_path),
        "GRIDCAT_DB_URL": sqlite_url,
        "GRIDCAT_WAREHOUSE": "iceberg",
    }

    def retention(*args: str) -> dict:
        result = subprocess.run(
            [sys.executable, "-m", "gridcat_pipelines.cli.main", "retention", "--older-than", "0", *args, "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["warehouse_snapshots"]

    kept = retention()  # default age: 7 days, nothing that old
    assert kept["older_than_days"] == 7 and kept["expired"] == {"campaign": 0}
    dry = retention("--warehouse-snapshots-older-than", "0", "--dry-run")
    assert dry["dry_run"] and dry["expired"]["campaign"] >= 2
    done = retention("--warehouse-snapshots-older-than", "0")
    assert done["expired"] == dry["expired"]
    assert len(IcebergWarehouse.open(tmp_path).table("campaign").snapshots()) == 1


def test_cli_retention_removes_unreferenced_warehouse_files_older_than_its_age(tmp_path, sqlite_url):
    """``gridcat retention`` expires snapshots, then deletes the files no kept snapshot needs,
    once they are older than --warehouse-orphans-older-than (default 3 days, at least 1 hour)."""
    wh = IcebergWarehouse.open(tmp_path)
    for version in range(1, 4):
        wh.replace_slice("campaign", CUSTOMER, DAY, rows(version), new_run_id(), state_version=version)
    env = {**os.environ, "GRIDCAT_HOME": str(tmp_path), "GRIDCAT_DB_URL": sqlite_url, "GRIDCAT_WAREHOUSE": "iceberg"}

    def retention(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "gridcat_pipelines.cli.main", "retention", "--older-than", "0", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=REPO)

    expire = ("--warehouse-snapshots-older-than", "0")
    young = json.loads(retention(*expire, "--json").stdout)["warehouse_orphans"]
    assert young == {"older_than_days": 3.0, "removed": {"campaign": {"files": 0, "bytes": 0}}, "dry_run": False}
    age_table_files(wh, days=2)  # every file, referenced or not, two days old
    assert json.loads(retention("--json").stdout)["warehouse_orphans"]["removed"]["campaign"]["files"] == 0
    dry = json.loads(retention("--warehouse-orphans-older-than", "1", "--dry-run", "--json").stdout)
    assert dry["warehouse_orphans"]["dry_run"] and dry["warehouse_orphans"]["removed"]["campaign"]["files"] >= 2
    text = retention("--warehouse-orphans-older-than", "1")
    assert text.returncode == 0, text.stderr
    files = dry["warehouse_orphans"]["removed"]["campaign"]
    assert f"older than 1.0 days: deleted campaign {files['files']} ({files['bytes']} bytes)" in text.stdout
    assert IcebergWarehouse.open(tmp_path).read_slice("campaign", CUSTOMER, DAY).num_rows == 3
    # a superseded raw run retention --older-than 0 would delete: a refused option deletes nothing
    from gridcat_pipelines.state import StateStore
    from gridcat_pipelines_tests.test_leases_retention import _runs

    store = StateStore.open(sqlite_url)
    sink = RawSink(str(tmp_path / "raw"))
    key = PartitionKey("google_ads", CUSTOMER, "campaign", DAY)
    superseded, authoritative = _runs(sink, key, [10, 9])
    for run in (superseded, authoritative):
        store.record_result(ValidationResult(key, run, "success", "1", 2))
    store.close()
    for bad, says in (("0.01", "at least"), ("-1", "negative"), ("soon", "not a number"), ("nan", "not a finite")):
        refused = retention("--warehouse-orphans-older-than", bad)
        assert refused.returncode != 0 and says in refused.stdout + refused.stderr, (bad, refused)
    assert {r.run_id for r in sink.list_runs(key)} == {superseded, authoritative}, "checked before deleting"
    env["GRIDCAT_WAREHOUSE"] = "parquet"
    refused = retention("--warehouse-orphans-older-than", "3")
    assert refused.returncode != 0 and "needs GRIDCAT_WAREHOUSE=iceberg" in refused.stdout + refused.stderr


def test_the_warehouse_setting_is_checked():
    from gridcat_pipelines.config import Settings

    assert Settings.from_env({"GRIDCAT_WAREHOUSE": "iceberg"}).warehouse_kind == "iceberg"
    assert Settings.from_env({"GRIDCAT_WAREHOUSE_URL": "postgresql://x/y"}).warehouse_kind == "postgres"
    assert Settings.from_env({}).warehouse_kind == "parquet"
    for bad in ({"GRIDCAT_WAREHOUSE": "delta"}, {"GRIDCAT_WAREHOUSE": "postgres"}):
        with pytest.raises(GridcatError) as err:
            Settings.from_env(bad)
        assert err.value.code == INVALID_ARGUMENT
    from gridcat_pipelines.cli.demo_command import _with_warehouse

    settings = Settings.from_env({})
    assert _with_warehouse(settings, "iceberg").warehouse_kind == "iceberg"
    for bad in ("delta", "postgres"):  # gridcat demo --warehouse: the same check, named after the flag
        with pytest.raises(GridcatError) as err:
            _with_warehouse(settings, bad)
        assert err.value.code == INVALID_ARGUMENT and "--warehouse" in err.value.message


def _record(store, sink: RawSink, key: PartitionKey, n: int) -> str:
    table = rows(n, customer=key.customer_id)
    meta = sink.write_run(key, table.to_batches(), schema_version="1", schema=table.schema)
    store.record_result(
        ValidationResult.parse(
            customer_id=key.customer_id,
            query_name=key.query_name,
            logical_date=key.logical_date.isoformat(),
            run_id=meta.run_id,
            status="success",
            record_count=n,
        )
    )
    return meta.run_id


def test_many_partitions_load_in_one_commit(store, tmp_path):
    """A packed load run's partitions of one table commit together: one catalog commit, each
    partition's run, rows and version readable from metadata, each load logged."""
    from gridcat_pipelines.warehouse import load_log
    from gridcat_pipelines.warehouse.loader import PlannedLoad, load_partitions

    sink, wh = RawSink(str(tmp_path / "raw")), IcebergWarehouse.open(tmp_path)
    keys = [PartitionKey("google_ads", str(1000 + n), "campaign", DAY - timedelta(days=n % 3)) for n in range(12)]
    runs = {k: _record(store, sink, k, n % 4) for n, k in enumerate(keys)}
    wh.replace_slice("campaign", "999", DAY, rows(1, customer="999"), new_run_id())  # the table exists
    commits = len(wh.table("campaign").metadata.metadata_log)
    outcomes = load_partitions(store, sink, wh, [PlannedLoad(k) for k in keys])
    assert [o.status for o in outcomes] == [LOADED] * len(keys)
    assert len(wh.table("campaign").metadata.metadata_log) == commits + 1, "one commit for twelve partitions"
    for n, key in enumerate(keys):
        loaded = wh.loaded_slice("campaign", key.customer_id, key.logical_date)
        assert (loaded.run_id, loaded.rows, loaded.state_version) == (runs[key], n % 4, 1)
        assert wh.read_slice("campaign", key.customer_id, key.logical_date).num_rows == n % 4
    logged = load_log.load_records(store.engine, keys)
    assert {k: (r.loaded_run_id, r.loaded_version) for k, r in logged.items()} == {k: (runs[k], 1) for k in keys}


def test_a_partition_that_moved_sends_the_batch_one_by_one(store, tmp_path):
    """One partition gets a newer run between planning and loading: nothing is committed
    together, every partition is loaded on its own and fenced; the moved one is skipped."""
    from gridcat_pipelines.warehouse.loader import PlannedLoad, load_partitions

    sink, wh = RawSink(str(tmp_path / "raw")), IcebergWarehouse.open(tmp_path)
    keys = [PartitionKey("google_ads", str(2000 + n), "campaign", DAY) for n in range(4)]
    runs = [_record(store, sink, k, 2) for k in keys]
    plans = [PlannedLoad(k, r, 1) for k, r in zip(keys, runs)]
    newer = _record(store, sink, keys[2], 5)  # moved after planning
    outcomes = load_partitions(store, sink, wh, plans)
    assert [o.status for o in outcomes] == [LOADED, LOADED, SKIPPED_SUPERSEDED, LOADED]
    assert wh.loaded_slice("campaign", keys[2].customer_id, DAY) is None
    assert load_partition(store, sink, wh, keys[2]).status == LOADED
    assert wh.loaded_slice("campaign", keys[2].customer_id, DAY).run_id == newer


def test_status_reads_each_table_once_and_agrees_with_one_by_one(wh):
    """``loaded_slices`` (what ``warehouse status`` uses on Iceberg) answers what
    ``loaded_slice`` answers, partition by partition: loaded, empty, replaced and missing."""
    from gridcat_pipelines.state import PartitionState
    from gridcat_pipelines.warehouse.status import warehouse_status

    days = [DAY - timedelta(days=n) for n in range(4)]
    wh.replace_slice("campaign", CUSTOMER, days[0], rows(3), new_run_id(), state_version=1)
    wh.replace_slice("campaign", CUSTOMER, days[1], rows(0), new_run_id(), state_version=1)
    wh.replace_slice("campaign", "42", days[2], rows(2, customer="42"), new_run_id(), state_version=1)
    wh.replace_slice("campaign", CUSTOMER, days[0], rows(5), new_run_id(), state_version=2)
    partitions = [(c, d) for c in (CUSTOMER, "42") for d in days]
    bulk = wh.loaded_slices("campaign", partitions)
    one_by_one = {(c, d): wh.loaded_slice("campaign", c, d) for c, d in partitions}
    assert bulk == {k: v for k, v in one_by_one.items() if v is not None}
    assert len(bulk) == 3 and bulk[(CUSTOMER, days[0])].rows == 5 and bulk[(CUSTOMER, days[1])].rows == 0
    states = [PartitionState.implicit_pending(PartitionKey("google_ads", c, "campaign", d)) for c, d in partitions]
    summary = warehouse_status(states, wh)["summary"]
    assert summary["held"] == 3 and summary["missing"] == 5


def test_reconcile_reads_iceberg_slices_in_bulk_and_catches_the_log_up(store, tmp_path, monkeypatch):
    """Twelve partitions hold their authoritative run in Iceberg but the load log never heard
    (it lags the warehouse); three are not loaded. Reconcile reads the candidates' slices with
    one metadata read per feed, records the twelve as loaded and answers the three."""
    from gridcat_pipelines.warehouse.reconcile import find_stale

    wh = IcebergWarehouse.open(tmp_path)
    days = [DAY - timedelta(days=n) for n in range(15)]
    for n, day in enumerate(days):
        run = new_run_id()
        store.record_result(
            ValidationResult(PartitionKey("google_ads", CUSTOMER, "campaign", day), run, "success", "1", 2)
        )
        if n >= 3:
            wh.replace_slice("campaign", CUSTOMER, day, rows(2), run, state_version=1)
    reads: list[int] = []
    bulk = wh.loaded_slices
    monkeypatch.setattr(
        wh, "loaded_slices", lambda feed, partitions: reads.append(len(partitions)) or bulk(feed, partitions)
    )
    monkeypatch.setattr(wh, "loaded_slice", lambda *a: pytest.fail("one partition at a time"))
    scope = dict(feeds=["campaign"], customers=None, start_date=days[-1], end_date=DAY, now=datetime.now(UTC))
    stale = find_stale(store, **scope, warehouse=wh)
    assert [s.key.logical_date for s in stale] == sorted(days[:3])
    assert reads == [15], "all candidates of the feed in one read"
    assert [s.key.logical_date for s in find_stale(store, **scope)] == sorted(days[:3]), "the log caught up"
    limited = find_stale(store, **scope, warehouse=wh, limit=2)
    assert [s.key.logical_date for s in limited] == sorted(days[:3])[:2] and reads[1:] == [2]


def test_a_bad_warehouse_setting_is_a_coded_cli_error(tmp_path):
    env = {**os.environ, "GRIDCAT_HOME": str(tmp_path), "GRIDCAT_WAREHOUSE": "delta"}
    result = subprocess.run(
        [sys.executable, "-m", "gridcat_pipelines.cli.main", "warehouse", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    error = json.loads(result.stderr.strip().splitlines()[-1])
    assert error["code"] == "INVALID_ARGUMENT" and "GRIDCAT_WAREHOUSE" in error["message"]
    assert not (tmp_path / "state.db").exists(), "nothing was created"
