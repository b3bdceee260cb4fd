"""The gate: follows the state change feed and requests a warehouse load for every partition
that became ``success`` at a new authoritative run (or was re-pointed).

One run request per customer x day loads every feed of that partition that has a new
authoritative run: its ``run_key`` holds each feed's run id and state version, and a tag
``gridcat/run_id.<feed>`` hands each loader its run."""

import json

import dagster as dg

from gridcat_pipelines.defs.gate.assets import run_id_tag, state_version_tag, warehouse_key
from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION, partition_key
from gridcat_pipelines.defs.ingestion.resources import PipelineConfigResource
from gridcat_pipelines.defs.resources import StateStoreResource
from gridcat_pipelines.gate import loads_by_partition, plan_loads

GATE_SENSOR_NAME = "authoritative_run_gate"
WAREHOUSE_JOB_NAME = "google_ads_warehouse_load"
CHANGES_PER_TICK = 1000


def build_gate_sensor(job) -> dg.SensorDefinition:
    """The gating sensor for ``job`` (the warehouse load job)."""

    @dg.sensor(
        name=GATE_SENSOR_NAME,
        job=job,
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Loads each partition's new authoritative success run into the warehouse.",
    )
    def gate(context: dg.SensorEvaluationContext, state_store: StateStoreResource, pipeline_config: PipelineConfigResource):
        cursor = json.loads(context.cursor)["seq"] if context.cursor else 0
        config = pipeline_config.config
        plan = plan_loads(
            state_store.store,
            cursor,
            feeds=set(config.feeds),
            customers=set(context.instance.get_dynamic_partitions(CUSTOMERS_PARTITION)),
            start_date=config.start_date,
            limit=CHANGES_PER_TICK,
        )
        for problem in plan.problems:
            context.log.warning(problem)
        loader = context.caching_dynamic_partitions_loader
        if loader is not None:  # one batched lookup, not one query per customer when Dagster checks the requests
            loader.get_existing_dynamic_partitions(
                CUSTOMERS_PARTITION, sorted({load.key.customer_id for load in plan.loads})
            )
        requests = [
            dg.RunRequest(
                run_key="load|" + "|".join(load.run_key for load in group),
                partition_key=partition_key(customer_id, day),
                asset_selection=[warehouse_key(load.key.query_name) for load in group],
                tags={
                    **{run_id_tag(load.key.query_name): load.run_id for load in group},
                    **{state_version_tag(load.key.query_name): str(load.version) for load in group},
                },
            )
            for (customer_id, day), group in loads_by_partition(plan.loads).items()
        ]
        new_cursor = json.dumps({"seq": plan.next_cursor})
        if not requests:
            return dg.SensorResult(skip_reason=f"no new authoritative runs after change {cursor}", cursor=new_cursor)
        return dg.SensorResult(run_requests=requests, cursor=new_cursor)

    return gate
