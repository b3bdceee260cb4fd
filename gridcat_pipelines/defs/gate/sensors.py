"""The gate: follows the state change feed and requests a warehouse load for every partition
that became ``success`` at a new authoritative run (or was re-pointed); and reconcile, which
requests again the loads that failed or never ran.

The loads of a tick are packed like the ingest runs: one run covers a range of customer groups
x days with at most ``pipeline.customer_days_per_run`` customer-days to load, and loads every
feed of its range whose slice is not the authoritative run at the state's version. A run of a
single customer-day carries the plan itself: its ``run_key`` holds each feed's source, run id
and state version, and tags ``gridcat/run_id.<feed>`` / ``gridcat/state_version.<feed>`` hand
each loader its run and the version its commit is fenced with. Every commit is fenced either
way (:func:`gridcat_pipelines.warehouse.loader.load_partition`).

A change whose partition an ingest run still covers (queued or running) is not requested by
the gate: the run is still writing that range, and a load per gate tick would make a load run
every 15 s for each long ingest run. The gate marks those partitions due in the load log
instead, and reconcile requests them, packed, on its first tick after the ingest run ended."""

import json
from collections import defaultdict
from datetime import UTC, date, datetime

import dagster as dg

from gridcat_pipelines.customer_groups import CustomerGroups
from gridcat_pipelines.defs.gate.assets import SOURCE_TAG, run_id_tag, state_version_tag, warehouse_key
from gridcat_pipelines.defs.ingestion.jobs import INGEST_JOB_NAME
from gridcat_pipelines.defs.ingestion.partitions import (
    CUSTOMERS_PARTITION,
    last_partition_date,
    partition_dims,
    partition_key,
)
from gridcat_pipelines.defs.ingestion.run_scope import CUSTOMERS_TAG, customer_groups
from gridcat_pipelines.defs.ingestion.schedules import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from gridcat_pipelines.defs.resources import PipelineConfigResource, StateStoreResource
from gridcat_pipelines.gate import PlannedLoad, plan_loads
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


def load_requests(
    loads: list[PlannedLoad],
    prefix: str,
    groups: CustomerGroups,
    partitions_in_order: list[str],
    customer_days_per_run: int,
) -> list[dg.RunRequest]:
    """Run requests loading ``loads``, packed like the ingest runs (``run_key`` = ``prefix`` + a
    counter): a run covers a range of customer groups x days of at most ``customer_days_per_run``
    customer-days with loads, and loads whatever of its range is not yet its authoritative run.
    A run that is one customer-day gets the runs and versions the gate planned, as tags."""
    by_group: dict[str, list[PlannedLoad]] = defaultdict(list)
    for load in loads:
        by_group[groups.group_of(load.key.customer_id)].append(load)
    order = {group: i for i, group in enumerate(partitions_in_order)}
    chunks: list[list[PlannedLoad]] = []
    size = 0
    for group in sorted(by_group, key=lambda g: (order.get(g, len(order)), g)):
        cost = len({(load.key.customer_id, load.key.logical_date) for load in by_group[group]})
        if chunks and chunks[-1] and size + cost <= customer_days_per_run:
            chunks[-1].extend(by_group[group])
            size += cost
        else:
            chunks.append(list(by_group[group]))
            size = cost
    return [_request(chunk, f"{prefix}{i}", groups, order) for i, chunk in enumerate(chunks)]


def _request(chunk: list[PlannedLoad], run_key: str, groups: CustomerGroups, order: dict[str, int]) -> dg.RunRequest:
    """One load run for ``chunk`` (its loads are of consecutive groups in the instance order)."""
    chunk = sorted(chunk, key=lambda load: (load.key.logical_date, load.key.customer_id, load.key.query_name))
    feeds = sorted({load.key.query_name for load in chunk})
    selection = [warehouse_key(feed) for feed in feeds]
    source = {SOURCE_TAG: chunk[0].key.source}
    customer_days = {(load.key.customer_id, load.key.logical_date) for load in chunk}
    if len(customer_days) == 1:
        ((customer_id, day),) = customer_days
        return dg.RunRequest(
            run_key=run_key + "|" + "|".join(load.run_key for load in chunk),
            partition_key=partition_key(groups.group_of(customer_id), day),
            asset_selection=selection,
            tags={
                **source,
                CUSTOMERS_TAG: customer_id,
                **{run_id_tag(load.key.query_name): load.run_id for load in chunk},
                **{state_version_tag(load.key.query_name): str(load.version) for load in chunk},
            },
        )
    chunk_groups = [groups.group_of(c) for c, _ in customer_days]
    days = [d for _, d in customer_days]
    ranked = sorted(set(chunk_groups), key=lambda g: (order.get(g, len(order)), g))
    start, end = partition_key(ranked[0], min(days)), partition_key(ranked[-1], max(days))
    tags = dict(source)  # the run loads whatever of its range is stale: no list of customers needed
    if start == end:
        return dg.RunRequest(run_key=run_key, partition_key=start, asset_selection=selection, tags=tags)
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=selection,
        tags={**tags, ASSET_PARTITION_RANGE_START_TAG: str(start), ASSET_PARTITION_RANGE_END_TAG: str(end)},
    )


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
        groups = customer_groups(config)
        partitions = context.instance.get_dynamic_partitions(CUSTOMERS_PARTITION)
        plan = plan_loads(
            state_store.store,
            cursor,
            feeds=set(config.feeds),
            customers=groups.has_partition(partitions),
            start_date=config.start_date,
            end_date=last_partition_date(),
            limit=CHANGES_PER_TICK,
        )
        for problem in plan.problems:
            context.log.warning(problem)
        loader = context.caching_dynamic_partitions_loader
        if loader is not None:  # one batched lookup, not one query per group when Dagster checks the requests
            loader.get_existing_dynamic_partitions(
                CUSTOMERS_PARTITION, sorted({groups.group_of(load.key.customer_id) for load in plan.loads})
            )
        ingesting = _InFlight(context.instance, INGEST_JOB_NAME, partitions)
        loads, deferred = [], []
        for load in plan.loads:
            busy = ingesting.covers(groups.group_of(load.key.customer_id), load.key.logical_date)
            (deferred if busy else loads).append(load)
        if deferred:
            load_log.record_requested(
                state_store.store.engine, [load.key for load in deferred], datetime.now(UTC), due_now=True
            )
            context.log.info(
                f"{len(deferred)} load(s) wait for the ingest run covering them to end; reconcile requests them then"
            )
        requests = load_requests(
            loads, f"load|{cursor}-{plan.next_cursor}|", groups, partitions, config.customer_days_per_run
        )
        new_cursor = json.dumps({"seq": plan.next_cursor})
        if not requests:
            return dg.SensorResult(skip_reason=f"no new authoritative runs after change {cursor}", cursor=new_cursor)
        return dg.SensorResult(run_requests=requests, cursor=new_cursor)

    return gate


def build_reconcile_sensor(job) -> dg.SensorDefinition:
    """The reconcile sensor for ``job``: every minute, requests the loads of success partitions
    whose slice is not their authoritative run and that are due (a failed load after its
    backoff, a request that never ran, a change the gate could not load or left to it while
    its ingest run went on), skipping partitions with a load or ingest run queued or running."""

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
        groups = customer_groups(config)
        partitions = context.instance.get_dynamic_partitions(CUSTOMERS_PARTITION)
        stale = find_stale(
            store,
            feeds=config.feeds,
            customers=groups.has_partition(partitions),
            start_date=config.start_date,
            end_date=last_partition_date(now),
            now=now,
        )
        loading = _InFlight(context.instance, job.name, partitions)
        ingesting = _InFlight(context.instance, INGEST_JOB_NAME, partitions)
        due = [
            p
            for p in stale
            if p.due
            and not loading.covers(groups.group_of(p.key.customer_id), p.key.logical_date)
            and not ingesting.covers(groups.group_of(p.key.customer_id), p.key.logical_date)
        ]
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
        return load_requests(loads, f"reconcile|{now.isoformat()}|", groups, partitions, config.customer_days_per_run)

    return reconcile


class _InFlight:
    """The partitions of every run of a job queued, starting or running (one key or a range)."""

    def __init__(self, instance: dg.DagsterInstance, job_name: str, partitions_in_order: list[str]):
        self.order = {group: i for i, group in enumerate(partitions_in_order)}
        self.spans: list[tuple[int, int, date, date]] = []
        for run in instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=_IN_FLIGHT)):
            tags = run.tags
            start = tags.get(ASSET_PARTITION_RANGE_START_TAG) or tags.get("dagster/partition")
            end = tags.get(ASSET_PARTITION_RANGE_END_TAG) or start
            if not start or "|" not in start or "|" not in end:
                continue
            (g1, d1), (g2, d2) = partition_dims(start), partition_dims(end)
            if g1 in self.order and g2 in self.order:
                self.spans.append((self.order[g1], self.order[g2], d1, d2))

    def covers(self, group: str, day: date) -> bool:
        """Whether a run in flight covers ``group`` on ``day``."""
        i = self.order.get(group)
        return i is not None and any(a <= i <= b and d1 <= day <= d2 for a, b, d1, d2 in self.spans)
