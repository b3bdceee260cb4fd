"""End to end with the real ``dagster-daemon`` against a PostgreSQL-backed Dagster instance
(``deploy/dagster-postgres.yaml``) and a PostgreSQL state store, both on loopback.

The daemon dequeues the ingest runs a schedule tick asks for (the schedule ticks hourly and asks
for each account's newest complete account-local day once a day, so the test evaluates a tick
itself and submits two of its run requests through the
instance's QueuedRunCoordinator, the way the daemon's scheduler would), the gate sensor
(default RUNNING) requests the warehouse loads on its own, and DefaultRunLauncher runs every
run in a process of its own. Mid-way one partition gets a second run (``gridcat pull``), which
loads, and is then re-pointed to its first run (``gridcat states set-authoritative``), which
loads again. At the end the Parquet warehouse holds exactly the authoritative run of every
partition whose state is ``success``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from gridcat_pipelines.config import Settings
from gridcat_pipelines.definitions import build_defs
from gridcat_pipelines.defs.gate.assets import run_id_tag, warehouse_key
from gridcat_pipelines.defs.gate.sensors import GATE_SENSOR_NAME, RECONCILE_SENSOR_NAME, WAREHOUSE_JOB_NAME
from gridcat_pipelines.defs.ingestion.jobs import INGEST_JOB_NAME
from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION
from gridcat_pipelines.defs.ingestion.run_scope import request_scope
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.state import PartitionKey, StateStore
from gridcat_pipelines.warehouse.parquet_target import ParquetWarehouse

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: gridcat, dagster, dagster-daemon
DEPLOY_CONFIG = REPO / "deploy" / "dagster-postgres.yaml"
FEEDS = ["campaign", "ad_group"]  # two feeds keep every run short; the flow is per feed anyway
CUSTOMERS = ["1234567890", "2345678901"]
SCHEDULE_NAME = "google_ads_daily_pull"
DAEMON_STOP_TIMEOUT = 30


# ----------------------------------------------------------------------------- environment


def _write_configs(tmp: Path) -> tuple[Path, Path]:
    """A feed config with ``FEEDS`` only and a customer config with ``CUSTOMERS`` only."""
    feeds_doc = yaml.safe_load((REPO / "config" / "google_apis.yaml").read_text())
    feeds_doc["feeds"] = [f for f in feeds_doc["feeds"] if f["name"] in FEEDS]
    customers_doc = yaml.safe_load((REPO / "config" / "customers.yaml").read_text())
    customers_doc["customers"] = [c for c in customers_doc["customers"] if c["customer_id"] in CUSTOMERS]
    feeds, customers = tmp / "feeds.yaml", tmp / "customers.yaml"
    feeds.write_text(yaml.safe_dump(feeds_doc, sort_keys=False))
    customers.write_text(yaml.safe_dump(customers_doc, sort_keys=False))
    return feeds, customers


def _write_instance_config(dagster_home: Path) -> None:
    """``deploy/dagster-postgres.yaml`` with the queue polled every second."""
    config = yaml.safe_load(DEPLOY_CONFIG.read_text())
    config["run_coordinator"]["config"]["dequeue_interval_seconds"] = 1
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture
def e2e_env(tmp_path, pg_databases, monkeypatch) -> dict[str, str]:
    """Environment for the daemon, the CLI and this process: two fresh PostgreSQL databases."""
    instance_url = sa.engine.make_url(pg_databases.create())
    state_url = pg_databases.create()
    feeds, customers = _write_configs(tmp_path)
    dagster_home = tmp_path / "dagster_home"
    _write_instance_config(dagster_home)
    values = {
        "GRIDCAT_HOME": str(tmp_path / "gridcat_home"),
        "GRIDCAT_DB_URL": state_url,
        "GRIDCAT_FEEDS_CONFIG": str(feeds),
        "GRIDCAT_CUSTOMERS_CONFIG": str(customers),
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_PG_HOST": instance_url.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(instance_url.port or 5432),
        "DAGSTER_PG_USER": instance_url.username or "postgres",
        "DAGSTER_PG_PASSWORD": instance_url.password or "",
        "DAGSTER_PG_DB": instance_url.database,
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "PYTHONUNBUFFERED": "1",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)  # the in-process instance reads the `env:` entries too
    return {**os.environ, **values}


def _gridcat(env: dict[str, str], *args: str) -> dict:
    """Run the ``gridcat`` console script with ``--json``; its parsed output."""
    proc = subprocess.run(
        [str(BIN / "gridcat"), *args, "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"gridcat {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout) if proc.stdout.strip() else {}


# ----------------------------------------------------------------------------- the daemon


class Daemon:
    """``dagster-daemon run -w workspace.yaml`` in a session of its own, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def assert_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"dagster-daemon exited with {self.proc.returncode}")

    def tail(self, lines: int = 80) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> int | None:
        """SIGTERM, wait; SIGKILL the process group (code server, run workers) on timeout."""
        pgid = self.proc.pid  # start_new_session: the daemon leads its own process group
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(DAEMON_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    os.killpg(pgid, signal.SIGKILL)
                    self.proc.wait(10)
            _reap_group(pgid)
        finally:
            self._log.close()
        return self.proc.returncode


def _reap_group(pgid: int) -> None:
    """Stop what is left of a process group this test started (a code server, a run worker)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        os.killpg(pgid, sig)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


@pytest.fixture
def daemon_factory(tmp_path) -> Iterator[Callable[[dict[str, str]], Daemon]]:
    started: list[Daemon] = []

    def start(env: dict[str, str]) -> Daemon:
        daemon = Daemon(env, tmp_path / "daemon.log")
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


# ----------------------------------------------------------------------------- launching like a schedule tick


def _schedule_run_requests(defs: dg.Definitions, instance: dg.DagsterInstance, tick: datetime) -> list[dg.RunRequest]:
    """What the daily schedule asks for at ``tick`` (evaluated here, as the daemon would)."""
    schedule = defs.resolve_schedule_def(SCHEDULE_NAME)
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    ) as ctx:
        data = schedule.evaluate_tick(ctx)
    return list(data.run_requests or [])


def _submit(env: dict[str, str], defs: dg.Definitions, requests: list[dg.RunRequest]) -> None:
    """Submit each request as a queued run of the ingest job (``dagster job launch`` goes through
    the instance's run coordinator, so the daemon dequeues and launches it)."""
    partitions_def = defs.resolve_job_def(INGEST_JOB_NAME).partitions_def
    procs = []
    for request in requests:
        partition_tags = (
            {} if request.partition_key is None else partitions_def.get_tags_for_partition_key(request.partition_key)
        )  # a range run's tags name its range already
        tags = {
            **request.tags,
            **partition_tags,
            "gridcat/launched_as": f"{SCHEDULE_NAME} tick, run_key {request.run_key}",
        }
        procs.append(
            subprocess.Popen(
                [
                    str(BIN / "dagster"),
                    "job",
                    "launch",
                    "-w",
                    "workspace.yaml",
                    "-j",
                    INGEST_JOB_NAME,
                    "--tags",
                    json.dumps(tags),
                ],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"dagster job launch failed ({proc.returncode}):\n{out[-2000:]}\n{err[-3000:]}"


# ----------------------------------------------------------------------------- observing


class World:
    """Reads the instance, the state store and the warehouse the daemon's runs write."""

    def __init__(
        self, instance: dg.DagsterInstance, store: StateStore, warehouse: ParquetWarehouse, day: date, daemon: Daemon
    ):
        self.instance, self.store, self.warehouse, self.day, self.daemon = instance, store, warehouse, day, daemon
        self.keys = [PartitionKey("google_ads", c, f, day) for c in CUSTOMERS for f in FEEDS]

    def runs(self, job_name: str | None = None) -> list[dg.DagsterRun]:
        return list(self.instance.get_runs(filters=dg.RunsFilter(job_name=job_name) if job_name else None))

    def failed_runs(self) -> list[dg.DagsterRun]:
        bad = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
        return [r for r in self.runs() if r.status in bad]

    def all_runs_finished(self) -> bool:
        return all(r.is_finished for r in self.runs())

    def out_of_sync(self) -> list[str]:
        """Partitions whose warehouse slice is not their authoritative success run (empty = in sync)."""
        problems = []
        for key in self.keys:
            state = self.store.get(key)
            if state.status != "success":
                problems.append(f"{key}: state {state.status}")
                continue
            loaded = self.warehouse.loaded_slice(key.query_name, key.customer_id, key.logical_date)
            if loaded is None:
                problems.append(f"{key}: not loaded (authoritative {state.current_run_id})")
            elif loaded.run_id != state.current_run_id:
                problems.append(f"{key}: holds {loaded.run_id}, authoritative {state.current_run_id}")
        return problems

    def wait_for(
        self,
        what: str,
        predicate: Callable[[], bool],
        timeout: float,
        injected: Callable[[dg.DagsterRun], bool] = lambda run: False,
    ) -> None:
        """Poll ``predicate``; any failed run the test did not inject (``injected``) fails at once."""
        deadline = time.monotonic() + timeout
        while True:
            self.daemon.assert_alive()
            failed = [r for r in self.failed_runs() if not injected(r)]
            if failed:
                raise AssertionError(f"waiting for {what}: run(s) failed: {[r.run_id for r in failed]}")
            if predicate():
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f}s waiting for {what}; out of sync: {self.out_of_sync()}"
                )
            time.sleep(1)

    def diagnostics(self) -> str:
        lines = ["--- runs (newest first)"]
        for run in self.runs():
            tags = {
                k: v
                for k, v in run.tags.items()
                if k.startswith(("gridcat/", "dagster/partition", "dagster/sensor", "dagster/run_key"))
            }
            lines.append(f"{run.run_id[:8]} {run.job_name} {run.status.value} {tags}")
            if run.status == dg.DagsterRunStatus.FAILURE:
                for record in self.instance.all_logs(run.run_id):
                    event = record.dagster_event
                    if event is not None and event.is_failure or (record.level >= 40 and record.user_message):
                        lines.append(f"    {record.step_key}: {record.user_message[:800]}")
        lines.append("--- states / warehouse")
        for key in self.keys:
            state = self.store.get(key)
            loaded = self.warehouse.loaded_slice(key.query_name, key.customer_id, key.logical_date)
            lines.append(
                f"{key}: {state.status} v{state.version} {state.current_run_id} -> {loaded.run_id if loaded else None}"
            )
        lines.append("--- daemon log (tail)")
        lines.append(self.daemon.tail())
        return "\n".join(lines)


# ----------------------------------------------------------------------------- the test


def test_daemon_schedule_and_gate_load_exactly_the_authoritative_runs(e2e_env, daemon_factory):
    started = time.monotonic()
    env = e2e_env
    settings = Settings.from_env(env)

    _gridcat(env, "db", "upgrade")
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])  # creates Dagster's tables once
    store = StateStore.open(env["GRIDCAT_DB_URL"])
    try:
        instance.add_dynamic_partitions(CUSTOMERS_PARTITION, CUSTOMERS)  # the sync sensor agrees
        defs = build_defs(settings)

        # today's 12:00 UTC tick of the daily pull asks for yesterday + lookback per customer (by
        # then yesterday ended, plus the 3 h settle, in New York and Los Angeles too; at 06:00 UTC
        # it is still running in Los Angeles); the test submits yesterday's runs (one per customer)
        today = datetime.now(UTC).date()
        tick = datetime.combine(today, dtime(12, 0), tzinfo=UTC)
        day = today - timedelta(days=1)
        requests = _schedule_run_requests(defs, instance, tick)
        config = defs.resources["pipeline_config"].config
        partitions_def = defs.resolve_job_def(INGEST_JOB_NAME).partitions_def
        covered = {
            (c, part.day)
            for r in requests
            for part in request_scope(config, partitions_def, instance, r)
            for c in part.customer_ids
        }
        assert covered >= {(c, day) for c in CUSTOMERS}
        # both zones' windows are new at this tick and alike: one packed run covers both customers
        assert len(requests) == 1 and requests[0].partition_key_range is not None
        todays = requests

        daemon = daemon_factory(env)
        world = World(instance, store, ParquetWarehouse(str(settings.warehouse_root)), day, daemon)
        try:
            _submit(env, defs, todays)
            ingest_runs = world.runs(INGEST_JOB_NAME)
            assert len(ingest_runs) == len(todays)

            # 1. the daemon runs the ingest runs; the gate sensor loads every partition by itself
            world.wait_for("the ingest runs and the first loads", lambda: not world.out_of_sync(), timeout=180)
            print(f"[{time.monotonic() - started:.0f}s] first loads in sync")

            # 2. a re-pull makes a second run for one partition; the gate reloads it
            moved = PartitionKey("google_ads", CUSTOMERS[0], "campaign", day)
            first_run = store.get(moved).current_run_id
            pulled = _gridcat(
                env, "pull", "--customer", moved.customer_id, "--query", moved.query_name, "--date", day.isoformat()
            )
            second_run = pulled["run_id"]
            assert second_run != first_run
            assert pulled["state"]["status"] == "success" and pulled["state"]["current_run_id"] == second_run

            def holds(run_id: str) -> Callable[[], bool]:
                def check() -> bool:
                    loaded = world.warehouse.loaded_slice(moved.query_name, moved.customer_id, day)
                    return loaded is not None and loaded.run_id == run_id and not world.out_of_sync()

                return check

            world.wait_for(f"the reload of {second_run}", holds(second_run), timeout=120)

            def repoint(run_id: str, expected_version: int) -> dict:
                """``gridcat states set-authoritative`` of the moved partition to ``run_id``."""
                return _gridcat(
                    env,
                    "states",
                    "set-authoritative",
                    "--customer",
                    moved.customer_id,
                    "--query",
                    moved.query_name,
                    "--date",
                    day.isoformat(),
                    "--run-id",
                    run_id,
                    "--expected-version",
                    str(expected_version),
                )

            print(f"[{time.monotonic() - started:.0f}s] re-pulled run loaded")

            # 3. an operator re-points the partition back to its first run; it loads again
            version = store.get(moved).version
            repointed = repoint(first_run, version)
            assert repointed["current_run_id"] == first_run and repointed["version"] == version + 1
            world.wait_for(f"the reload of {first_run} after the re-point", holds(first_run), timeout=120)
            print(f"[{time.monotonic() - started:.0f}s] re-pointed run loaded again")

            world.wait_for("every run to finish", world.all_runs_finished, timeout=60)
            ingest = world.runs(INGEST_JOB_NAME)  # the queued one(s) and the one `gridcat pull` ran
            assert len(ingest) == len(todays) + 1 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in ingest)

            # the warehouse holds exactly the authoritative run of every success partition
            for key in world.keys:
                state = store.get(key)
                assert state.status == "success", key
                loaded = world.warehouse.loaded_slice(key.query_name, key.customer_id, key.logical_date)
                assert loaded is not None and loaded.run_id == state.current_run_id, key
                assert loaded.rows == state.record_count, key
                table = world.warehouse.read_slice(key.query_name, key.customer_id, key.logical_date)
                assert set(table.column("run_id").to_pylist()) <= {state.current_run_id}, key
            assert store.get(moved).current_run_id == first_run

            # the warehouse writers' concurrency pool (when the loaders declare one) got the
            # instance's default limit from deploy/dagster-postgres.yaml: one writer
            pool = defs.resolve_assets_def(warehouse_key("campaign")).op.pool
            if pool is not None:
                info = instance.event_log_storage.get_concurrency_info(pool)
                assert (info.slot_count, info.limit) == (1, 1), info

            # every load was launched by the gate sensor (or, for partitions whose ingest run was
            # still going when the gate saw them, by reconcile once it ended) and succeeded; the
            # re-pointed run loaded twice
            loads = world.runs(WAREHOUSE_JOB_NAME)
            sensors = {GATE_SENSOR_NAME, RECONCILE_SENSOR_NAME}
            assert loads and all(r.tags.get("dagster/sensor_name") in sensors for r in loads)
            assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in loads)
            moved_partition = f"{moved.customer_id}|{day.isoformat()}"
            loaded_runs = [
                r.tags.get(run_id_tag("campaign"))
                for r in reversed(loads)
                if r.tags.get("dagster/partition") == moved_partition
            ]
            # the first load came in a packed range run (no planned run in its tags); the re-pull
            # and the re-point are single customer-days, each loaded with the run the gate planned
            assert [r for r in loaded_runs if r][-2:] == [second_run, first_run], loaded_runs

            # 4. a load that fails (the raw run is unreachable while it runs) is retried by the
            #    reconcile sensor on its own, with no state change, once storage is back
            sink = RawSink(str(settings.raw_root))
            run_dir = sink.run_path(moved, second_run)
            os.rename(run_dir, run_dir + ".away")
            version = store.get(moved).version
            repoint(second_run, version)
            loads_before = {r.run_id for r in world.runs(WAREHOUSE_JOB_NAME)}

            def new_load(run: dg.DagsterRun) -> bool:
                return run.job_name == WAREHOUSE_JOB_NAME and run.run_id not in loads_before

            world.wait_for(
                "the gate's load to fail on the missing raw run",
                lambda: any(new_load(r) for r in world.failed_runs()),
                timeout=120,
                injected=new_load,
            )
            injected = {r.run_id for r in world.failed_runs()}
            os.rename(run_dir + ".away", run_dir)
            print(f"[{time.monotonic() - started:.0f}s] load failed as injected; raw run restored")
            world.wait_for(
                f"reconcile to load {second_run}",
                holds(second_run),
                timeout=240,
                injected=lambda run: run.run_id in injected,
            )
            assert store.get(moved).version == version + 1, "retried without a state change"
            world.wait_for(
                "the retry run to finish",
                world.all_runs_finished,
                timeout=60,
                injected=lambda run: run.run_id in injected,
            )
            retry = [
                r
                for r in world.runs(WAREHOUSE_JOB_NAME)
                if r.run_id not in loads_before and r.status == dg.DagsterRunStatus.SUCCESS
            ]
            assert retry and all(r.tags.get("dagster/sensor_name") == RECONCILE_SENSOR_NAME for r in retry)
            print(f"[{time.monotonic() - started:.0f}s] reconcile reloaded it")
        except BaseException:
            print(world.diagnostics())
            raise
        finally:
            code = daemon.stop()
            print(f"[{time.monotonic() - started:.0f}s] dagster-daemon stopped (exit {code})")
    finally:
        store.close()
        instance.dispose()
