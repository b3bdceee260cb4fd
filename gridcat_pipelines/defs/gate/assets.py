"""Per-feed warehouse assets ``google_ads/warehouse/<feed>``: load the authoritative run."""

import dagster as dg

from gridcat_pipelines.defs.gate.resources import WarehouseResource
from gridcat_pipelines.defs.ingestion.assets import validated_key
from gridcat_pipelines.defs.ingestion.partitions import partition_dims
from gridcat_pipelines.defs.resources import RawSinkResource, StateStoreResource
from gridcat_pipelines.feeds.models import FeedConfig
from gridcat_pipelines.leases.store import LeaseStore
from gridcat_pipelines.state import PartitionKey
from gridcat_pipelines.state.keys import DEFAULT_SOURCE
from gridcat_pipelines.warehouse.loader import LOADED, load_partition

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


def build_warehouse_asset(feed: FeedConfig, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The loader of one feed: replaces the partition's slice with the authoritative run."""
    key = warehouse_key(feed.name)

    @dg.multi_asset(
        name=f"load_{feed.name}",
        specs=[
            dg.AssetSpec(
                key,
                deps=[validated_key(feed.name)],
                partitions_def=partitions_def,
                group_name=WAREHOUSE_GROUP,
                kinds={"parquet"},
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
    ):
        customer_id, day = partition_dims(context.partition_key)
        tags = context.run.tags
        source = tags.get(SOURCE_TAG, DEFAULT_SOURCE)
        partition = PartitionKey(source, customer_id, feed.name, day)
        run_id = tags.get(run_id_tag(feed.name))  # None: a manual run loads the current one
        version = tags.get(state_version_tag(feed.name))
        store = state_store.store
        if source != DEFAULT_SOURCE:  # the warehouse holds this pipeline's source only
            context.log.warning(f"{partition}: source {source!r} is not loaded by this pipeline; skipped")
            return
        outcome = load_partition(
            store,
            raw_sink.sink,
            warehouse.warehouse,
            partition,
            run_id,
            version=None if version is None else int(version),
            leases=LeaseStore(store),
        )
        if outcome.status != LOADED:
            context.log.info(outcome.message)  # fenced out by a newer state: nothing materialized
            return
        context.log.info(outcome.message)
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "run_id": outcome.run_id,
                "state_version": outcome.state_version,
                "rows": outcome.slice.rows,
                "path": dg.MetadataValue.path(outcome.slice.path),
            },
        )
        state = store.get(partition)  # read again: a newer run may have won while loading
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name="loaded_run_is_authoritative",
            passed=state.status == "success" and state.current_run_id == outcome.run_id,
            metadata={"loaded_run_id": outcome.run_id, "authoritative_run_id": state.current_run_id or ""},
        )
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name="row_count_matches_state",
            passed=state.record_count == outcome.slice.rows,
            metadata={"loaded_rows": outcome.slice.rows, "record_count": state.record_count},
        )

    return warehouse_asset
