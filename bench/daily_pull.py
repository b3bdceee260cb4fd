"""Benchmark one day of the daily pull through the real launch path: CPU per customer-day.

For ``--customers N`` synthetic Google Ads accounts (ids 1000000000.., spread over UTC,
America/New_York, Europe/Berlin and Asia/Tokyo; every feed of ``config/google_apis.yaml``,
``pipeline.start_date`` 60 days back), in fresh scratch PostgreSQL databases (the Dagster
instance, ``deploy/dagster-postgres.yaml`` with the queue polled every second, and the gridcat
state store) and a temporary ``GRIDCAT_HOME`` (raw runs, Parquet warehouse):

1. The customer groups are added as dynamic partitions (what ``sync_customer_partitions`` does).
2. The real ``dagster-daemon run -w workspace.yaml`` is started in a session of its own (its
   code server, the run queue, DefaultRunLauncher: a process per run); the bench waits until
   it evaluates sensors.
3. The hourly schedule ``google_ads_daily_pull`` is evaluated here, the way the daemon
   evaluates it (``build_schedule_context`` with ``scheduled_execution_time``, on
   ``build_defs``), at the 24 hourly ticks of today (UTC); each tick's run requests are created
   and submitted to the QueuedRunCoordinator the way the daemon's scheduler does (run created
   from the code location's job snapshot and execution plan, then ``submit_run``) before the
   next tick is evaluated (the schedule dedupes on run tags). The daemon dequeues and launches
   them; its gate sensor requests the warehouse loads by itself. A first day of ticks asks
   for the previous pull generation too in the zones whose day is not complete at 00:00 UTC,
   so some customer-days are pulled twice; "customer-days" counts pulls (what the runs do),
   and the CPU per customer-day divides by it.
4. The bench waits (poll every 2 s) until every ingest run finished, every (customer, feed,
   day) the requests cover has a state, ``find_stale`` is empty and no load run is queued or
   running; then it stops the daemon and reaps every process left (the bench is a child
   subreaper, so run workers and code servers whose parent died are reaped here too).
5. CPU: ``getrusage`` of this process and of every reaped descendant (daemon, code server, run
   workers), from just before the daemon started; PostgreSQL's own CPU is not counted. The
   split daemon / code server / run workers is read from ``/proc`` just before the stop; the
   code servers the daemon retired (it replaces its code server every 60 s) count with the run
   workers there.
6. Baseline, same run: the work loop alone, in process, no Dagster, on a fresh PostgreSQL
   state store, raw directory and Parquet warehouse: for the same (customer, day) pulls of
   ``--baseline-customers`` of the customers (default min(N, 50)), for each feed in turn,
   ``pull_raw_run`` + ``validate_and_record`` + ``load_partition`` (with a ``LeaseStore``, as
   the load step does), sequential, no simulated latency (latency is not CPU);
   ``time.process_time`` per customer-day.

The daemon's own scheduler keeps ticking on the wall clock; its ticks find today's generations
requested already and skip (the figures say if it launched anything). Do not run the bench
across 00:00 UTC. Wall times depend on what else the machine runs; the CPU figures much less.

Prints customers, customer-days, runs (ingest, load, per 1000 customer-days), schedule
evaluation median / max, wall and CPU times, CPU per customer-day of the launch path and of
the work loop, their ratio, and the goal ``CPU/customer-day <= 3 x work + 0.3 s`` as PASS or
MISS. Exit 0 when every partition was loaded (PASS or MISS), 1 on timeout or a dead daemon.

Run:  .venv/bin/python bench/daily_pull.py [--customers 200] [--latency-ms 0]
          [--batch-delay-ms 0] [--max-in-flight 8] [--customer-days-per-run 400]
          [--baseline-customers N] [--timeout-min 40] [--pg-url URL] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# bench/http.py would shadow the standard library's http (Dagster imports it)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import dagster as dg  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import yaml  # noqa: E402

from bench.pg_scratch import DEFAULT_PG_URL, scratch_database  # noqa: E402
from gridcat_pipelines.config import Settings  # noqa: E402
from gridcat_pipelines.definitions import build_defs  # noqa: E402
from gridcat_pipelines.defs.gate.sensors import GATE_SENSOR_NAME, RECONCILE_SENSOR_NAME, WAREHOUSE_JOB_NAME  # noqa: E402
from gridcat_pipelines.defs.ingestion.jobs import INGEST_JOB_NAME  # noqa: E402
from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION, last_partition_date  # noqa: E402
from gridcat_pipelines.defs.ingestion.run_scope import customer_groups, request_scope  # noqa: E402
from gridcat_pipelines.defs.ingestion.schedules import DAILY_PULL_SCHEDULE_NAME  # noqa: E402
from gridcat_pipelines.ingest import partition_key, pull_raw_run, validate_and_record  # noqa: E402
from gridcat_pipelines.leases.store import LeaseStore  # noqa: E402
from gridcat_pipelines.raw_sink.sink import RawSink  # noqa: E402
from gridcat_pipelines.sources.synthetic import SyntheticSource  # noqa: E402
from gridcat_pipelines.state import PartitionKey, StateStore  # noqa: E402
from gridcat_pipelines.state.db import normalize_url  # noqa: E402
from gridcat_pipelines.warehouse.loader import load_partition  # noqa: E402
from gridcat_pipelines.warehouse.parquet_target import ParquetWarehouse  # noqa: E402
from gridcat_pipelines.warehouse.reconcile import find_stale  # noqa: E402

BIN = Path(sys.executable).parent  # the venv's bin: dagster-daemon
DEPLOY_CONFIG = REPO / "deploy" / "dagster-postgres.yaml"
LOCATION_NAME = "gridcat"  # workspace.yaml's code location
DEFINITIONS_MODULE = "gridcat_pipelines.definitions"
FIRST_CUSTOMER = 1_000_000_000
ZONES = (("UTC", "GBP"), ("America/New_York", "USD"), ("Europe/Berlin", "EUR"), ("Asia/Tokyo", "JPY"))
HISTORY_DAYS = 60
PR_SET_CHILD_SUBREAPER = 36
POLL_S = 2.0
PROGRESS_S = 15.0
READY_TIMEOUT_S = 180
DAEMON_STOP_TIMEOUT_S = 60
REAP_TIMEOUT_S = 30
GOAL_FACTOR, GOAL_OFFSET_S = 3.0, 0.3
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def log(msg: str) -> None:
    """A progress line on stderr."""
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- environment


def customer_ids(n: int) -> list[str]:
    """The ``n`` synthetic customer ids (10 digits)."""
    return [str(FIRST_CUSTOMER + i) for i in range(n)]


def write_configs(tmp: Path, n: int, customer_days_per_run: int, today: date) -> tuple[Path, Path]:
    """A copy of the shipped feed config (every feed; start date ``HISTORY_DAYS`` back, the given
    run packing) and a customer config of ``n`` customers spread over ``ZONES``."""
    feeds_doc = yaml.safe_load((REPO / "config" / "google_apis.yaml").read_text())
    feeds_doc["pipeline"]["start_date"] = (today - timedelta(days=HISTORY_DAYS)).isoformat()
    feeds_doc["pipeline"]["customer_days_per_run"] = customer_days_per_run
    customers = []
    for i, customer_id in enumerate(customer_ids(n)):
        zone, currency = ZONES[i % len(ZONES)]
        customers.append(
            {
                "customer_id": customer_id,
                "name": f"Bench account {i}",
                "time_zone": zone,
                "currency": currency,
                "tags": {"env": "bench", "tier": ("gold", "silver", "bronze")[i % 3]},
            }
        )
    feeds, customers_path = tmp / "feeds.yaml", tmp / "customers.yaml"
    feeds.write_text(yaml.safe_dump(feeds_doc, sort_keys=False))
    customers_path.write_text(yaml.safe_dump({"customers": customers}, sort_keys=False))
    return feeds, customers_path


def write_instance_config(dagster_home: Path) -> None:
    """``deploy/dagster-postgres.yaml`` with the queue polled every second (as the daemon e2e test)."""
    config = yaml.safe_load(DEPLOY_CONFIG.read_text())
    config["run_coordinator"]["config"]["dequeue_interval_seconds"] = 1
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def bench_env(tmp: Path, instance_url: str, state_url: str, feeds: Path, customers: Path, args) -> dict[str, str]:
    """The variables the daemon, its code server, the run workers and this process share."""
    url = sa.engine.make_url(instance_url)
    return {
        "GRIDCAT_HOME": str(tmp / "gridcat_home"),
        "GRIDCAT_DB_URL": state_url,
        "GRIDCAT_FEEDS_CONFIG": str(feeds),
        "GRIDCAT_CUSTOMERS_CONFIG": str(customers),
        "GRIDCAT_SYNTHETIC_LATENCY_MS": str(args.latency_ms),
        "GRIDCAT_SYNTHETIC_BATCH_DELAY_MS": str(args.batch_delay_ms),
        "GRIDCAT_ADS_MAX_IN_FLIGHT": str(args.max_in_flight),
        "DAGSTER_HOME": str(tmp / "dagster_home"),
        "DAGSTER_PG_HOST": url.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(url.port or 5432),
        "DAGSTER_PG_USER": url.username or "postgres",
        "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_DB": url.database,
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "PYTHONUNBUFFERED": "1",
    }


# ----------------------------------------------------------------------------- processes and CPU


def become_subreaper() -> None:
    """Make orphaned descendants (run workers, code servers) children of this process."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def cpu_seconds() -> tuple[float, float]:
    """``(this process, reaped descendants)`` user + system CPU seconds."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def session_cpu(session_id: int) -> tuple[float, int]:
    """CPU seconds of the live processes of a session (their own and their reaped children's)
    and how many there are, from ``/proc``."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, count = 0.0, 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[3]) != session_id:  # field 6 of stat: the session id
            continue
        total += sum(int(v) for v in fields[11:15]) / ticks  # utime stime cutime cstime
        count += 1
    return total, count


def session_breakdown(session_id: int) -> dict[str, float]:
    """CPU seconds of a session's live processes by role, from ``/proc``: the daemon, its code
    server(s), anything else alive, and every descendant they reaped already (run workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {"daemon": 0.0, "code_servers": 0.0, "other_live": 0.0, "reaped_descendants": 0.0}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) != session_id:
            continue
        own = (int(fields[11]) + int(fields[12])) / ticks
        out["reaped_descendants"] += (int(fields[13]) + int(fields[14])) / ticks
        if int(entry) == session_id:
            out["daemon"] += own
        elif " api grpc " in cmdline:
            out["code_servers"] += own
        else:
            out["other_live"] += own
    return out


def children_of(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(entry))
    return found


def reap_all(timeout: float = REAP_TIMEOUT_S) -> int:
    """Wait for every child (orphans reparented to this subreaper included); SIGKILL what is
    still alive after ``timeout``. Returns how many processes were reaped."""
    reaped, deadline, killed = 0, time.monotonic() + timeout, False
    while True:
        try:
            pid, _ = os.waitpid(-1, 0 if killed else os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid:
            reaped += 1
            continue
        if time.monotonic() > deadline:
            for child in children_of(os.getpid()):
                log(f"  process {child} still alive after {timeout:.0f} s: SIGKILL")
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            killed = True
        time.sleep(0.1)


class Daemon:
    """``dagster-daemon run -w workspace.yaml`` in a session of its own, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def alive(self) -> bool:
        """Whether the daemon process is still running."""
        return self.proc.poll() is None

    def tail(self, lines: int = 60) -> str:
        """The last lines of its log."""
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Until the daemon evaluates the gate sensor (its code server is up)."""
        deadline = time.monotonic() + timeout
        while GATE_SENSOR_NAME not in self.log_path.read_text(errors="replace"):
            if not self.alive:
                raise RuntimeError(f"dagster-daemon exited with {self.proc.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"dagster-daemon not ready after {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.5)

    def stop(self) -> int | None:
        """SIGTERM to its process group, wait; SIGKILL the group on timeout."""
        pgid = self.proc.pid  # start_new_session: the daemon leads its own process group
        try:
            if self.alive:
                os.killpg(pgid, signal.SIGTERM)
                try:
                    self.proc.wait(DAEMON_STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    log(f"  dagster-daemon still running {DAEMON_STOP_TIMEOUT_S} s after SIGTERM: SIGKILL")
                    os.killpg(pgid, signal.SIGKILL)
                    self.proc.wait(10)
            try:
                os.killpg(pgid, signal.SIGTERM)  # whatever of the group outlived the daemon
            except ProcessLookupError:
                pass
        finally:
            self._log.close()
        return self.proc.returncode


# ----------------------------------------------------------------------------- launching like the scheduler


class Launcher:
    """Creates and submits runs the way the daemon's scheduler does (``_create_scheduler_run``):
    from the code location's job snapshot and execution plan, tagged with the schedule and tick,
    then ``submit_run`` to the instance's QueuedRunCoordinator. The code location is loaded in
    this process under the workspace's location name, so the daemon launches the runs from its
    own code server."""

    def __init__(self, instance: dg.DagsterInstance, stack: ExitStack):
        from dagster._core.remote_origin import InProcessCodeLocationOrigin
        from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
        from dagster._core.workspace.context import WorkspaceProcessContext
        from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

        origin = InProcessCodeLocationOrigin(
            LoadableTargetOrigin(
                executable_path=sys.executable, module_name=DEFINITIONS_MODULE, working_directory=str(REPO)
            ),
            location_name=LOCATION_NAME,
        )
        process = stack.enter_context(WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)))
        self.instance = instance
        self.workspace = process.create_request_context()
        self.location = self.workspace.get_code_location(LOCATION_NAME)
        (self.repository,) = self.location.get_repositories().values()
        self.job = self.repository.get_full_job(INGEST_JOB_NAME)
        self.schedule = self.repository.get_schedule(DAILY_PULL_SCHEDULE_NAME)
        self.plan = self.location.get_execution_plan(self.job, {}, step_keys_to_execute=None, known_state=None)

    def submit(self, request: dg.RunRequest, tick: datetime) -> str:
        """Create the run of ``request`` (queued) and return its id."""
        from dagster._core.storage.tags import RUN_KEY_TAG, SCHEDULED_EXECUTION_TIME_TAG

        tags = {
            **self.job.run_tags,
            **dg.DagsterRun.tags_for_schedule(self.schedule),
            **request.tags,
            SCHEDULED_EXECUTION_TIME_TAG: tick.astimezone(UTC).isoformat(),
        }
        if request.run_key:
            tags[RUN_KEY_TAG] = request.run_key
        run = self.instance.create_run(
            job_name=self.job.name,
            run_id=None,
            run_config=request.run_config,
            resolved_op_selection=self.job.resolved_op_selection,
            step_keys_to_execute=None,
            op_selection=self.job.op_selection,
            status=dg.DagsterRunStatus.NOT_STARTED,
            root_run_id=None,
            parent_run_id=None,
            tags=tags,
            job_snapshot=self.job.job_snapshot,
            execution_plan_snapshot=self.plan.execution_plan_snapshot,
            parent_job_snapshot=self.job.parent_job_snapshot,
            remote_job_origin=self.job.get_remote_origin(),
            job_code_origin=self.job.get_python_origin(),
            asset_selection=frozenset(request.asset_selection) if request.asset_selection is not None else None,
            asset_check_selection=None,
            asset_graph=self.repository.asset_graph,
        )
        self.instance.submit_run(run.run_id, self.workspace)
        return run.run_id


@dataclass
class Day:
    """What the 24 ticks asked for."""

    eval_s: list[float] = field(default_factory=list)  # per tick
    submit_s: float = 0.0
    submit_cpu_s: float = 0.0
    requests: int = 0
    ticks_with_runs: int = 0
    pulls: list[tuple[str, date]] = field(default_factory=list)  # (customer, day) per customer-day pulled
    run_ids: list[str] = field(default_factory=list)


def run_the_day(
    defs: dg.Definitions, settings: Settings, instance: dg.DagsterInstance, launcher: Launcher, today: date
):
    """Evaluate the daily schedule at every hour of ``today`` (UTC) and submit each tick's runs
    before the next tick."""
    schedule = defs.resolve_schedule_def(DAILY_PULL_SCHEDULE_NAME)
    repository = defs.get_repository_def()
    partitions_def = defs.resolve_job_def(INGEST_JOB_NAME).partitions_def
    config = settings.pipeline_config()
    day = Day()
    for hour in range(24):
        tick = datetime.combine(today, dtime(hour), tzinfo=UTC)
        t0 = time.perf_counter()
        with dg.build_schedule_context(
            instance=instance, scheduled_execution_time=tick, repository_def=repository
        ) as ctx:
            data = schedule.evaluate_tick(ctx)
        day.eval_s.append(time.perf_counter() - t0)
        requests = list(data.run_requests or [])
        if not requests:
            continue
        day.ticks_with_runs += 1
        day.requests += len(requests)
        for request in requests:
            for part in request_scope(config, partitions_def, instance, request):
                day.pulls.extend((customer_id, part.day) for customer_id in part.customer_ids)
        t0, c0 = time.perf_counter(), time.process_time()
        day.run_ids += [launcher.submit(request, tick) for request in requests]
        day.submit_s += time.perf_counter() - t0
        day.submit_cpu_s += time.process_time() - c0
        log(f"  tick {tick:%H:%M}: {len(requests)} run(s) requested in {day.eval_s[-1] * 1000:.0f} ms")
    return day


# ----------------------------------------------------------------------------- waiting for the gate


class Watch:
    """Reads the instance and the state store while the daemon works."""

    def __init__(self, instance: dg.DagsterInstance, store: StateStore, settings: Settings, keys: set[PartitionKey]):
        self.instance, self.store, self.keys = instance, store, keys
        self.config = settings.pipeline_config()
        self.seen_failures: set[str] = set()
        self.poll_cpu_s = 0.0  # this process's CPU spent polling (the observer, not the product)
        self._states_complete = False  # states never go away: once all are there, stop reading them

    def counts(self, job_name: str) -> dict[str, int]:
        """Runs of ``job_name`` by status."""
        out: dict[str, int] = {}
        for run in self.instance.get_runs(filters=dg.RunsFilter(job_name=job_name)):
            out[run.status.value] = out.get(run.status.value, 0) + 1
        return out

    def state_rows(self) -> int:
        """Rows in ``partition_state``."""
        with self.store.engine.connect() as conn:
            return conn.exec_driver_sql("SELECT count(*) FROM partition_state").scalar_one()

    def missing_states(self) -> list[PartitionKey]:
        """Expected keys without a state (still ``pending``)."""
        if self._states_complete:
            return []
        states = self.store.get_many(self.keys)
        missing = sorted((k for k, s in states.items() if s.status == "pending"), key=str)
        self._states_complete = not missing
        return missing

    def stale(self):
        """``find_stale`` over the whole pipeline."""
        now = datetime.now(UTC)
        return find_stale(
            self.store,
            feeds=self.config.feeds,
            customers=None,
            start_date=self.config.start_date,
            end_date=last_partition_date(now),
            now=now,
        )

    def new_failures(self) -> list[dg.DagsterRun]:
        """Failed or canceled runs not reported yet."""
        bad = [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
        runs = [
            r for r in self.instance.get_runs(filters=dg.RunsFilter(statuses=bad)) if r.run_id not in self.seen_failures
        ]
        self.seen_failures.update(r.run_id for r in runs)
        return runs

    def failure_detail(self, run: dg.DagsterRun) -> str:
        """The error lines of a failed run's event log."""
        lines = []
        for record in self.instance.all_logs(run.run_id):
            event = record.dagster_event
            if (event is not None and event.is_failure) or (record.level >= 40 and record.user_message):
                lines.append(f"    {record.step_key}: {record.user_message[:1500]}")
        return "\n".join(lines[-5:])


def run_durations(instance: dg.DagsterInstance, job_name: str) -> dict[str, float]:
    """Median and max of the runs' queue wait (created to started) and duration (started to ended)."""
    waits, durations = [], []
    for record in instance.get_run_records(filters=dg.RunsFilter(job_name=job_name)):
        if record.start_time is not None:
            waits.append(record.start_time - record.create_timestamp.timestamp())
            if record.end_time is not None:
                durations.append(record.end_time - record.start_time)
    return {
        "queue_wait_median_s": statistics.median(waits) if waits else 0.0,
        "queue_wait_max_s": max(waits, default=0.0),
        "duration_median_s": statistics.median(durations) if durations else 0.0,
        "duration_max_s": max(durations, default=0.0),
    }


def event_counts(instance_url: str) -> dict[str, int]:
    """Rows of Dagster's event log by event type (the run workers write them), most first."""
    engine = sa.create_engine(normalize_url(instance_url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT coalesce(dagster_event_type, 'log message'), count(*) FROM event_logs GROUP BY 1 ORDER BY 2 DESC"
            ).all()
    finally:
        engine.dispose()
    return {name: count for name, count in rows}


def wait_done(watch: Watch, daemon: Daemon, timeout_s: float) -> tuple[bool, str]:
    """Poll until the ingest runs finished, every expected key has a state, nothing is stale and
    no load run is in flight. ``(done, what is missing)``."""
    deadline = time.monotonic() + timeout_s
    started = last_progress = time.monotonic()
    while True:
        cpu0 = time.process_time()
        if not daemon.alive:
            return False, f"dagster-daemon exited with {daemon.proc.returncode}:\n{daemon.tail()}"
        for run in watch.new_failures():
            log(f"  run {run.run_id[:8]} ({run.job_name}) {run.status.value}:\n{watch.failure_detail(run)}")
        ingest, loads = watch.counts(INGEST_JOB_NAME), watch.counts(WAREHOUSE_JOB_NAME)
        ingest_busy = sum(ingest.get(s.value, 0) for s in IN_FLIGHT)
        loads_busy = sum(loads.get(s.value, 0) for s in IN_FLIGHT)
        rows = watch.state_rows()
        stale = None
        missing: list[PartitionKey] = []
        if not ingest_busy and rows >= len(watch.keys):
            missing = watch.missing_states()
            if not missing:
                stale = len(watch.stale())
                if stale == 0 and not loads_busy:
                    watch.poll_cpu_s += time.process_time() - cpu0
                    return True, ""
        now = time.monotonic()
        if now - last_progress >= PROGRESS_S:
            last_progress = now
            log(
                f"  [{now - started:4.0f} s] ingest {ingest}  load {loads}  states {rows}/{len(watch.keys)}"
                + (f"  stale {stale}" if stale is not None else "")
            )
        if now > deadline:
            missing = missing or watch.missing_states()
            stale_list = watch.stale()
            lines = [
                f"timed out after {timeout_s / 60:.0f} min",
                f"ingest runs {ingest}, load runs {loads}",
                f"states missing: {len(missing)} of {len(watch.keys)} {[str(k) for k in missing[:10]]}",
                f"stale partitions: {len(stale_list)} {[str(p.key) + ' ' + p.reason for p in stale_list[:10]]}",
                "--- daemon log (tail)",
                daemon.tail(),
            ]
            return False, "\n".join(lines)
        watch.poll_cpu_s += time.process_time() - cpu0
        time.sleep(POLL_S)


# ----------------------------------------------------------------------------- the work loop alone


def work_loop(settings: Settings, pulls: Iterable[tuple[str, date]], pg_url: str, tmp: Path) -> dict:
    """``pull_raw_run`` + ``validate_and_record`` + ``load_partition`` of every feed for each
    (customer, day), sequential, in process, on a fresh PostgreSQL state store."""
    config = settings.pipeline_config()
    source = SyntheticSource(seed=0)  # the resource's source, without latency (latency is not CPU)
    sink = RawSink(str(tmp / "raw"))
    warehouse = ParquetWarehouse(str(tmp / "warehouse"))
    pulls = list(pulls)
    with scratch_database(pg_url, "gridcat_bench_daily_work") as url:
        store = StateStore.open(url, upgrade=True)
        leases = LeaseStore(store)
        try:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for customer_id, day in pulls:
                customer = config.customers[customer_id]
                for feed in config.feeds.values():
                    meta = pull_raw_run(source, sink, feed, customer, day)
                    key = partition_key(feed, customer, day)
                    validate_and_record(store, sink, feed, customer, key, meta.run_id)
                    load_partition(store, sink, warehouse, key, leases=leases)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            stale = find_stale(
                store,
                feeds=config.feeds,
                customers=None,
                start_date=config.start_date,
                end_date=max(d for _, d in pulls),
                now=datetime.now(UTC),
            )
        finally:
            store.close()
    if stale:
        raise RuntimeError(f"work loop left {len(stale)} partition(s) unloaded, e.g. {stale[0].key}")
    return {"customer_days": len(pulls), "cpu_s": cpu, "wall_s": wall, "cpu_per_customer_day_s": cpu / len(pulls)}


# ----------------------------------------------------------------------------- the bench


def launch_path(args: argparse.Namespace, tmp: Path, today: date) -> dict:
    """Steps 1-5: the day through the daemon; every figure of the launch path."""
    feeds, customers = write_configs(tmp, args.customers, args.customer_days_per_run, today)
    with ExitStack() as stack:
        instance_url = stack.enter_context(scratch_database(args.pg_url, "gridcat_bench_daily_dagster"))
        state_url = stack.enter_context(scratch_database(args.pg_url, "gridcat_bench_daily_state"))
        env = bench_env(tmp, instance_url, state_url, feeds, customers, args)
        os.environ.update(env)  # this process's instance and code location read them too
        write_instance_config(Path(env["DAGSTER_HOME"]))
        settings = Settings.from_env()
        store = StateStore.open(state_url, upgrade=True)  # `gridcat db upgrade`
        stack.callback(store.close)
        instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])  # creates Dagster's tables
        stack.callback(instance.dispose)
        config = settings.pipeline_config()
        groups = customer_groups(config)
        instance.add_dynamic_partitions(CUSTOMERS_PARTITION, groups.keys())  # what the sync sensor adds
        defs = build_defs(settings)
        launcher = Launcher(instance, stack)
        log(
            f"{args.customers} customers in {len(groups.keys())} customer group(s), {len(config.feeds)} feeds; "
            f"starting dagster-daemon"
        )

        own0, children0 = cpu_seconds()
        wall0 = time.perf_counter()
        daemon = Daemon(dict(os.environ), tmp / "daemon.log")
        try:
            daemon.wait_ready()
            startup_wall = time.perf_counter() - wall0
            startup_cpu, _ = session_cpu(daemon.proc.pid)
            log(f"daemon ready after {startup_wall:.1f} s ({startup_cpu:.1f} CPU-s); evaluating 24 ticks")
            t_submit = time.perf_counter()
            day = run_the_day(defs, settings, instance, launcher, today)
            keys = {
                PartitionKey("google_ads", customer_id, feed, d)
                for customer_id, d in day.pulls
                for feed in config.feeds
            }
            log(
                f"{day.requests} run(s) for {len(day.pulls)} customer-day(s) ({len(keys)} partition states) "
                f"submitted; waiting for the daemon and the gate"
            )
            watch = Watch(instance, store, settings, keys)
            done, problem = wait_done(watch, daemon, args.timeout_min * 60)
            done_wall = time.perf_counter() - t_submit
            ingest_counts, load_counts = watch.counts(INGEST_JOB_NAME), watch.counts(WAREHOUSE_JOB_NAME)
            load_runs = list(instance.get_runs(filters=dg.RunsFilter(job_name=WAREHOUSE_JOB_NAME)))
            submitted = set(day.run_ids)
            other_ingest = [
                r.run_id
                for r in instance.get_runs(filters=dg.RunsFilter(job_name=INGEST_JOB_NAME))
                if r.run_id not in submitted
            ]
            breakdown = session_breakdown(daemon.proc.pid)
        finally:
            code = daemon.stop()
            reaped = reap_all()
        own1, children1 = cpu_seconds()
        total_wall = time.perf_counter() - wall0
        log(f"dagster-daemon stopped (exit {code}); {reaped} process(es) reaped")
        if not done:
            log(problem)
            return {"done": False, "problem": problem}

        by_sensor = {}
        for run in load_runs:
            name = run.tags.get("dagster/sensor_name", "other")
            by_sensor[name] = by_sensor.get(name, 0) + 1
        cpu = (own1 - own0) + (children1 - children0)
        breakdown["exited_at_shutdown"] = (children1 - children0) - sum(breakdown.values())
        return {
            "done": True,
            "customers": args.customers,
            "customer_groups": len(groups.keys()),
            "feeds": len(config.feeds),
            "customer_days": len(day.pulls),
            "distinct_customer_days": len(set(day.pulls)),
            "partition_states": len(keys),
            "ticks_with_runs": day.ticks_with_runs,
            "runs_requested": day.requests,
            "ingest_runs": sum(ingest_counts.values()),
            "ingest_runs_by_status": ingest_counts,
            "ingest_runs_not_from_the_bench": len(other_ingest),
            "load_runs": sum(load_counts.values()),
            "load_runs_by_status": load_counts,
            "load_runs_by_sensor": {
                "gate": by_sensor.get(GATE_SENSOR_NAME, 0),
                "reconcile": by_sensor.get(RECONCILE_SENSOR_NAME, 0),
                **{k: v for k, v in by_sensor.items() if k not in (GATE_SENSOR_NAME, RECONCILE_SENSOR_NAME)},
            },
            "schedule_eval_median_s": statistics.median(day.eval_s),
            "schedule_eval_max_s": max(day.eval_s),
            "schedule_eval_total_s": sum(day.eval_s),
            "submit_s": day.submit_s,
            "submit_cpu_s": day.submit_cpu_s,
            "ingest_run_times": run_durations(instance, INGEST_JOB_NAME),
            "load_run_times": run_durations(instance, WAREHOUSE_JOB_NAME),
            "dagster_events": event_counts(instance_url),
            "cpu_children_breakdown_s": breakdown,
            "daemon_startup_wall_s": startup_wall,
            "daemon_startup_cpu_s": startup_cpu,
            "wall_s": done_wall,
            "total_wall_s": total_wall,
            "cpu_s": cpu,
            "cpu_bench_process_s": own1 - own0,
            "cpu_bench_polling_s": watch.poll_cpu_s,
            "cpu_children_s": children1 - children0,
            "pulls": day.pulls,
        }


def baseline_pulls(pulls: list[tuple[str, date]], n: int) -> list[tuple[str, date]]:
    """The launch path's (customer, day) pulls of its first ``n`` customers (every zone when n >= 4)."""
    chosen = set(customer_ids(n))
    return [p for p in pulls if p[0] in chosen]


def report(args: argparse.Namespace, path: dict, work: dict) -> dict:
    """The figures, the ratio and the goal."""
    cds = path["customer_days"]
    per_cd = path["cpu_s"] / cds
    goal = GOAL_FACTOR * work["cpu_per_customer_day_s"] + GOAL_OFFSET_S
    out = {k: v for k, v in path.items() if k != "pulls"}
    out.update(
        {
            "latency_ms": args.latency_ms,
            "batch_delay_ms": args.batch_delay_ms,
            "max_in_flight": args.max_in_flight,
            "customer_days_per_run": args.customer_days_per_run,
            "runs_per_1000_customer_days": (path["ingest_runs"] + path["load_runs"]) * 1000 / cds,
            "cpu_per_customer_day_s": per_cd,
            "cpu_per_customer_day_without_daemon_startup_s": (path["cpu_s"] - path["daemon_startup_cpu_s"]) / cds,
            "work_loop": work,
            "ratio_launch_path_to_work": per_cd / work["cpu_per_customer_day_s"],
            "goal_cpu_per_customer_day_s": goal,
            "goal": "PASS" if per_cd <= goal else "MISS",
            "not_counted": "the PostgreSQL server's own CPU",
        }
    )
    return out


def _times(t: dict[str, float]) -> str:
    return (
        f"{t['queue_wait_median_s']:.1f} / {t['duration_median_s']:.1f} "
        f"(max {t['queue_wait_max_s']:.1f} / {t['duration_max_s']:.1f})"
    )


def _events(counts: dict[str, int]) -> str:
    top = ", ".join(f"{name} {count}" for name, count in list(counts.items())[:4])
    return f"{sum(counts.values())} ({top}, ...)"


def _breakdown(cpu: dict[str, float]) -> str:
    run_workers = cpu["reaped_descendants"] + cpu["other_live"] + cpu["exited_at_shutdown"]
    return f"{cpu['daemon']:.1f} / {cpu['code_servers']:.1f} / {run_workers:.1f}"


def print_table(out: dict) -> None:
    """The figures as a table."""
    work = out["work_loop"]
    rows = [
        ("customers (customer groups)", f"{out['customers']} ({out['customer_groups']})"),
        ("feeds", out["feeds"]),
        (
            "latency / batch delay / max in flight",
            f"{out['latency_ms']:g} ms / {out['batch_delay_ms']:g} ms / {out['max_in_flight']}",
        ),
        ("customer-days pulled (distinct)", f"{out['customer_days']} ({out['distinct_customer_days']})"),
        ("partition states (customer x feed x day)", out["partition_states"]),
        ("ticks with runs / runs requested", f"{out['ticks_with_runs']} / {out['runs_requested']}"),
        ("ingest runs", f"{out['ingest_runs']} {out['ingest_runs_by_status']}"),
        ("  of which not submitted by the bench", out["ingest_runs_not_from_the_bench"]),
        ("load runs", f"{out['load_runs']} {out['load_runs_by_status']} by sensor {out['load_runs_by_sensor']}"),
        ("runs per 1000 customer-days", f"{out['runs_per_1000_customer_days']:.1f}"),
        (
            "schedule evaluation median / max (ms)",
            f"{out['schedule_eval_median_s'] * 1000:.0f} / {out['schedule_eval_max_s'] * 1000:.0f}",
        ),
        ("run creation + submit, all ticks: wall / CPU (s)", f"{out['submit_s']:.1f} / {out['submit_cpu_s']:.1f}"),
        ("ingest runs: queue wait / duration, median (s)", _times(out["ingest_run_times"])),
        ("load runs: queue wait / duration, median (s)", _times(out["load_run_times"])),
        ("Dagster events written", _events(out["dagster_events"])),
        ("daemon startup wall / CPU (s)", f"{out['daemon_startup_wall_s']:.1f} / {out['daemon_startup_cpu_s']:.1f}"),
        ("wall: first tick to all loaded (s)", f"{out['wall_s']:.1f}"),
        ("wall: daemon start to all reaped (s)", f"{out['total_wall_s']:.1f}"),
        ("CPU total (s)", f"{out['cpu_s']:.1f}"),
        ("  of which this process (ticks, submit, poll)", f"{out['cpu_bench_process_s']:.1f}"),
        ("    of which polling (the bench's observer)", f"{out['cpu_bench_polling_s']:.1f}"),
        ("  of which daemon, code server, run workers", f"{out['cpu_children_s']:.1f}"),
        ("    daemon / code server / run workers (s)", _breakdown(out["cpu_children_breakdown_s"])),
        ("CPU per customer-day, launch path (s)", f"{out['cpu_per_customer_day_s']:.3f}"),
        ("  without the daemon's startup (s)", f"{out['cpu_per_customer_day_without_daemon_startup_s']:.3f}"),
        ("work loop customer-days (customers)", f"{work['customer_days']} ({work['customers']})"),
        ("work loop CPU / wall (s)", f"{work['cpu_s']:.1f} / {work['wall_s']:.1f}"),
        ("CPU per customer-day, work loop (s)", f"{work['cpu_per_customer_day_s']:.3f}"),
        ("ratio launch path / work loop", f"{out['ratio_launch_path_to_work']:.2f}"),
    ]
    print("daily pull through dagster-daemon (PostgreSQL instance and state store) vs the work loop alone")
    for label, value in rows:
        print(f"{label:50} {value}")
    print(
        f"goal CPU/customer-day <= {GOAL_FACTOR:g} x work + {GOAL_OFFSET_S:g} s = "
        f"{out['goal_cpu_per_customer_day_s']:.3f} s: {out['goal']} ({out['cpu_per_customer_day_s']:.3f} s)"
    )
    print(f"not counted: {out['not_counted']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="synthetic round-trip per query (runs only)")
    parser.add_argument("--batch-delay-ms", type=float, default=0.0, help="synthetic delay per streamed batch")
    parser.add_argument("--max-in-flight", type=int, default=8, help="GRIDCAT_ADS_MAX_IN_FLIGHT")
    parser.add_argument("--customer-days-per-run", type=int, default=400, help="pipeline.customer_days_per_run")
    parser.add_argument("--baseline-customers", type=int, help="work loop sample (default min(N, 50)), scaled")
    parser.add_argument("--timeout-min", type=float, default=40.0)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, raw runs)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.customers < 1 or args.max_in_flight < 1 or args.customer_days_per_run < 1:
        parser.error("--customers, --max-in-flight and --customer-days-per-run must be >= 1")
    baseline_n = min(args.customers, args.baseline_customers or 50)
    if baseline_n < 1:
        parser.error("--baseline-customers must be >= 1")
    become_subreaper()  # before any child exists
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still stops the daemon, drops the databases
    today = datetime.now(UTC).date()
    tmp = Path(tempfile.mkdtemp(prefix="gridcat-bench-daily-"))
    try:
        path = launch_path(args, tmp, today)
        if not path["done"]:
            return 1
        settings = Settings.from_env()
        pulls = baseline_pulls(path["pulls"], baseline_n)
        log(f"work loop: {len(pulls)} customer-day(s) of {baseline_n} customer(s), in process")
        work = work_loop(settings, pulls, args.pg_url, tmp / "work_loop")
        work["customers"] = baseline_n
        out = report(args, path, work)
        if args.json:
            print(json.dumps(out, indent=2, default=str))
        else:
            print_table(out)
        return 0
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
