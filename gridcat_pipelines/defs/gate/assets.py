"""Per-feed warehouse assets ``google_ads/warehouse/<feed>``: load the authoritative run.

A load run covers one partition or a range of them (customer groups x days). It loads, for each
customer of its partitions (narrowed by ``gridcat/customers``), the partition's authoritative
``success`` run when the warehouse does not hold it at the state's version yet. A run the gate
requests for a single customer-day hands the loader the run and state version it planned
(``gridcat/run_id.<feed>``, ``gridcat/state_version.<feed>``); either way the commit is fenced
(:func:`load_partitions`: one commit for all of them where the target can, Iceberg; else
:func:`load_partition` each). A failed load is logged for reconcile and the others go on; the step
fails at the end naming every failed customer-day.
"""

from collections import defaultdict
from datetime import UTC, datetime

import dagster as dg

from gridcat_pipelines.defs.gate.resources import WarehouseResource
from gridcat_pipelines.defs.ingestion.assets import validated_key
from gridcat_pipelines.defs.ingestion.run_scope import ScopedPartition, run_scope
from gridcat_pipelines.defs.resources import PipelineConfigResource, RawSinkResource, StateStoreResource
from gridcat_pipelines.feeds.models import FeedConfig
from gridcat_pipelines.leases.store import LeaseStore
from gridcat_pipelines.state import PartitionKey, StateStore
from gridcat_pipelines.state.keys import DEFAULT_SOURCE
from gridcat_pipelines.warehouse.loader import LOADED, LoadOutcome, PlannedLoad, load_partitions
from gridcat_pipelines.warehouse.reconcile import find_stale

WAREHOUSE_GROUP = "google_ads_warehouse"
SOURCE_TAG = "gridcat/source"
RUN_ID_TAG_PREFIX = "gridcat/run_id."
STATE_VERSION_TAG_PREFIX = "gridcat/state_version."
# The Dagster concurrency pool of the warehouse writers. Its limit lives in the instance
# (`dagster instance concurrency set gridcat_warehouse N`); deploy/dagster-postgres.yaml's
# `concurrency: pools: default_limit: 1` gives a fresh instance one writer at a time.
WAREHOUSE_POOL = "gridcat_warehouse"


def run_id_tag(feed_name: str) -> str:
    """The run tag naming the run to load for one feed: ``gridcat/run_id.<feed>``."""
    return RUN_ID_TAG_PREFIX + feed_name


def state_version_tag(feed_name: str) -> str:
    """The run tag with the state version the load was planned at."""
    return STATE_VERSION_TAG_PREFIX + feed_name


def warehouse_key(feed_name: str) -> dg.AssetKey:
    """``google_ads/warehouse/<feed>``."""
    return dg.AssetKey(["google_ads", "warehouse", feed_name])


def build_warehouse_asset(
    feed: FeedConfig, partitions_def: dg.PartitionsDefinition, warehouse_kind: str = "parquet"
) -> dg.AssetsDefinition:
    """The loader of one feed: replaces each partition's slice with its authoritative run. The
    asset's kind is the warehouse target (``parquet``, ``postgres`` or ``iceberg``)."""
    key = warehouse_key(feed.name)

    @dg.multi_asset(
        name=f"load_{feed.name}",
        specs=[
            dg.AssetSpec(
                key,
                deps=[validated_key(feed.name)],
                partitions_def=partitions_def,
                group_name=WAREHOUSE_GROUP,
                kinds={warehouse_kind},
                skippable=True,
                description=(
                    f"`{feed.name}` in the warehouse: exactly the authoritative success run of each "
                    "partition, every row tagged with its run_id. Launched by the gate sensor."
                ),
            )
        ],
        check_specs=[
            dg.AssetCheckSpec(
                "loaded_run_is_authoritative",
                asset=key,
                partitions_def=partitions_def,
                description="The slice holds the partition's authoritative run.",
            ),
            dg.AssetCheckSpec(
                "row_count_matches_state",
                asset=key,
                partitions_def=partitions_def,
                description="The slice has as many rows as the state's record_count.",
            ),
        ],
        partitions_def=partitions_def,
        can_subset=True,
        pool=WAREHOUSE_POOL,
    )
    def warehouse_asset(
        context: dg.AssetExecutionContext,
        state_store: StateStoreResource,
        raw_sink: RawSinkResource,
        warehouse: WarehouseResource,
        pipeline_config: PipelineConfigResource,
    ):
        tags = context.run.tags
        source = tags.get(SOURCE_TAG, DEFAULT_SOURCE)
        store = state_store.store
        if source != DEFAULT_SOURCE:  # the warehouse holds this pipeline's source only
            context.log.warning(f"source {source!r} is not loaded by this pipeline; skipped")
            return  # a generator: nothing materialized
        scope = run_scope(pipeline_config.config, context.partition_keys, tags)
        planned = _planned_loads(store, feed.name, scope, tags)
        leases = LeaseStore(store)
        outcomes: dict[str, list[tuple[str, LoadOutcome]]] = defaultdict(list)
        failed: list[str] = []
        results = load_partitions(
            store,
            raw_sink.sink,
            warehouse.warehouse,
            [PlannedLoad(partition, run_id, version) for _, partition, run_id, version in planned],
            leases=leases,
        )
        for (part, partition, _, _), outcome in zip(planned, results):
            if isinstance(outcome, Exception):  # logged for reconcile; the other partitions went on
                failed.append(f"load of {partition} failed: {getattr(outcome, 'message', None) or outcome}")
                continue
            context.log.info(outcome.message)
            if outcome.status == LOADED:
                outcomes[part.partition_key].append((partition.customer_id, outcome))
        if not planned:
            context.log.info(f"{feed.name}: nothing to load in {len(scope)} partition(s)")
        for partition_key, loaded in outcomes.items():
            for event in _partition_events(store, key, feed.name, partition_key, scope, loaded):
                context.log_event(event)
        for line in failed:
            context.log.warning(line)
        if failed:
            raise dg.Failure(
                description=failed[0]
                if len(failed) == 1
                else f"{len(failed)} load(s) failed: {'; '.join(failed[:10])}",
                allow_retries=False,
            )
        yield from ()

    return warehouse_asset


def _planned_loads(
    store: StateStore, feed_name: str, scope: list[ScopedPartition], tags: dict[str, str]
) -> list[tuple[ScopedPartition, PartitionKey, str | None, int | None]]:
    """What to load: the run and version the gate planned (a one-customer run with the feed's
    tags), else every customer-day of the scope whose slice is not its authoritative run."""
    if len(scope) == 1 and len(scope[0].customer_ids) == 1:  # one customer-day: as planned, or the current run
        part = scope[0]
        version = tags.get(state_version_tag(feed_name))
        partition = PartitionKey(DEFAULT_SOURCE, part.customer_ids[0], feed_name, part.day)
        return [(part, partition, tags.get(run_id_tag(feed_name)), None if version is None else int(version))]
    wanted = {(c, part.day): part for part in scope for c in part.customer_ids}
    if not wanted:
        return []
    days = [day for _, day in wanted]
    stale = find_stale(
        store,
        feeds=[feed_name],
        customers={c for c, _ in wanted},
        start_date=min(days),
        end_date=max(days),
        now=datetime.now(UTC),
    )
    return [
        (wanted[(p.key.customer_id, p.key.logical_date)], p.key, p.run_id, p.version)
        for p in stale
        if (p.key.customer_id, p.key.logical_date) in wanted
    ]


def _partition_events(
    store: StateStore,
    asset_key: dg.AssetKey,
    feed_name: str,
    partition_key: str,
    scope: list[ScopedPartition],
    loaded: list[tuple[str, LoadOutcome]],
):
    """The materialization and the two checks of one partition's loads."""
    day = next(p.day for p in scope if p.partition_key == partition_key)
    states = store.get_many(PartitionKey(DEFAULT_SOURCE, c, feed_name, day) for c, _ in loaded)
    by_customer = {c: (o, states[PartitionKey(DEFAULT_SOURCE, c, feed_name, day)]) for c, o in loaded}
    # read again: a newer run may have won while loading
    not_authoritative = sorted(
        c for c, (o, s) in by_customer.items() if not (s.status == "success" and s.current_run_id == o.run_id)
    )
    wrong_rows = sorted(c for c, (o, s) in by_customer.items() if s.record_count != o.slice.rows)
    metadata: dict = {
        "customers": len(loaded),
        "rows": sum(o.slice.rows for _, o in loaded),
        "loaded": dg.MetadataValue.json({c: {"run_id": o.run_id, "state_version": o.state_version} for c, o in loaded}),
    }
    if len(loaded) == 1:
        ((customer_id, outcome),) = loaded
        metadata.update(
            {
                "run_id": outcome.run_id,
                "state_version": outcome.state_version,
                "rows": outcome.slice.rows,
                "path": dg.MetadataValue.path(outcome.slice.path),
            }
        )
    yield dg.AssetMaterialization(asset_key, partition=partition_key, metadata=metadata)
    single = len(loaded) == 1
    (o, s) = next(iter(by_customer.values()))
    yield dg.AssetCheckEvaluation(
        asset_key=asset_key,
        check_name="loaded_run_is_authoritative",
        passed=not not_authoritative,
        partition=partition_key,
        metadata={"loaded_run_id": o.run_id, "authoritative_run_id": s.current_run_id or ""}
        if single
        else {"not_authoritative": dg.MetadataValue.json(not_authoritative)},
    )
    yield dg.AssetCheckEvaluation(
        asset_key=asset_key,
        check_name="row_count_matches_state",
        passed=not wrong_rows,
        partition=partition_key,
        metadata={"loaded_rows": o.slice.rows, "record_count": s.record_count}
        if single
        else {"row_count_differs": dg.MetadataValue.json(wrong_rows)},
    )
