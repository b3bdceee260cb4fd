"""The gate: follows the state change feed and requests a warehouse load for every partition
that became ``success`` at a new authoritative run (or was re-pointed); and reconcile, which
requests again the loads that failed or never ran.

One run request per customer x day loads every feed of that partition that has a new
authoritative run: its ``run_key`` holds each feed's source, run id and state version, and tags
``gridcat/run_id.<feed>`` / ``gridcat/state_version.<feed>`` hand each loader its run and the
version its commit is fenced with."""

import json
from datetime import UTC, datetime

import dagster as dg

from gridcat_pipelines.defs.gate.assets import SOURCE_TAG, run_id_tag, state_version_tag, warehouse_key
from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION, last_partition_date, partition_key
from gridcat_pipelines.defs.resources import PipelineConfigResource, StateStoreResource
from gridcat_pipelines.gate import PlannedLoad, loads_by_partition, plan_loads
from gridcat_pipelines.warehouse import load_log
from gridcat_pipelines.warehouse.reconcile import find_stale

GATE_SENSOR_NAME = "authoritative_run_gate"
RECONCILE_SENSOR_NAME = "warehouse_reconcile"
WAREHOUSE_JOB_NAME = "google_ads_warehouse_load"
CHANGES_PER_TICK = 20_000
RECONCILE_PER_TICK = 2_000
_IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def load_requests(loads: list[PlannedLoad], prefix: str) -> list[dg.RunRequest]:
    """One run request per customer x day for ``loads`` (``run_key`` = ``prefix`` + each load's key)."""
    return [
        dg.RunRequest(
            run_key=prefix + "|".join(load.run_key for load in group),
            partition_key=partition_key(customer_id, day),
            asset_selection=[warehouse_key(load.key.query_name) for load in group],
            tags={
                SOURCE_TAG: group[0].key.source,
                **{run_id_tag(load.key.query_name): load.run_id for load in group},
                **{state_version_tag(load.key.query_name): str(load.version) for load in group},
            },
        )
        for (customer_id, day), group in loads_by_partition(loads).items()
    ]


def build_gate_sensor(job) -> dg.SensorDefinition:
    """The gating sensor for ``job`` (the warehouse load job)."""

    @dg.sensor(
        name=GATE_SENSOR_NAME,
        job=job,
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Loads each partition's new authoritative success run into the warehouse.",
    )
    def gate(
        context: dg.SensorEvaluationContext, state_store: StateStoreResource, pipeline_config: PipelineConfigResource
    ):
        cursor = json.loads(context.cursor)["seq"] if context.cursor else 0
        config = pipeline_config.config
        plan = plan_loads(
            state_store.store,
            cursor,
            feeds=set(config.feeds),
            customers=set(context.instance.get_dynamic_partitions(CUSTOMERS_PARTITION)),
            start_date=config.start_date,
            end_date=last_partition_date(),
            limit=CHANGES_PER_TICK,
        )
        for problem in plan.problems:
            context.log.warning(problem)
        loader = context.caching_dynamic_partitions_loader
        if loader is not None:  # one batched lookup, not one query per customer when Dagster checks the requests
            loader.get_existing_dynamic_partitions(
                CUSTOMERS_PARTITION, sorted({load.key.customer_id for load in plan.loads})
            )
        requests = load_requests(plan.loads, "load|")
        new_cursor = json.dumps({"seq": plan.next_cursor})
        if not requests:
            return dg.SensorResult(skip_reason=f"no new authoritative runs after change {cursor}", cursor=new_cursor)
        return dg.SensorResult(run_requests=requests, cursor=new_cursor)

    return gate


def build_reconcile_sensor(job) -> dg.SensorDefinition:
    """The reconcile sensor for ``job``: every minute, requests the loads of success partitions
    whose slice is not their authoritative run and that are due (a failed load after its
    backoff, a request that never ran, a change the gate could not load), skipping partitions
    with a load run already queued or running."""

    @dg.sensor(
        name=RECONCILE_SENSOR_NAME,
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Retries failed or lost warehouse loads (with backoff) until every success "
        "partition's slice is its authoritative run.",
    )
    def reconcile(
        context: dg.SensorEvaluationContext,
        state_store: StateStoreResource,
        pipeline_config: PipelineConfigResource,
    ):
        config, store, now = pipeline_config.config, state_store.store, datetime.now(UTC)
        stale = find_stale(
            store,
            feeds=config.feeds,
            customers=context.instance.get_dynamic_partitions(CUSTOMERS_PARTITION),
            start_date=config.start_date,
            end_date=last_partition_date(now),
            now=now,
        )
        busy = _partitions_in_flight(context.instance, job.name)
        due = [p for p in stale if p.due and (p.key.customer_id, p.key.logical_date.isoformat()) not in busy]
        due = due[:RECONCILE_PER_TICK]
        if not due:
            return dg.SkipReason(f"{len(stale)} stale partition(s), none due")
        context.log.info(f"reconcile: requesting {len(due)} of {len(stale)} stale partition(s)")
        for partition in due[:20]:  # a sample; `gridcat warehouse status` lists them all with reasons
            context.log.info(
                f"reconcile: {partition.key} ({partition.reason}{': ' + partition.error if partition.error else ''})"
            )
        load_log.record_requested(store.engine, [p.key for p in due], now)
        loads = [PlannedLoad(p.key, p.run_id, p.version) for p in due]
        return load_requests(loads, f"reconcile|{now.isoformat()}|")

    return reconcile


def _partitions_in_flight(instance: dg.DagsterInstance, job_name: str) -> set[tuple[str, str]]:
    """``(customer_id, day)`` of every load run queued, starting or running."""
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=_IN_FLIGHT))
    busy = set()
    for run in runs:
        key = run.tags.get("dagster/partition")
        if key and "|" in key:
            customer_id, day = key.split("|")  # dimensions ordered by name: customer|date
            busy.add((customer_id, day))
    return busy
