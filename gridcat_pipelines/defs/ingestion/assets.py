"""Per-feed ingest assets: ``google_ads/raw/<feed>`` (the report pulled into an immutable raw
run) and ``google_ads/validated/<feed>`` (that run validated, the partition state written, a
check per rule), materialized together by one step per feed.

One run covers many customer-days: its partitions (a customer group x day, or a range of them)
narrowed by its tags (:mod:`run_scope`). The step pulls them with up to ``max_in_flight`` API
requests at once and validates each as it arrives (:func:`batch_ingest.ingest_many`); then it
logs, per partition, the materializations and check evaluations that name each customer and
its verdict. A customer whose pull failed is retried (transient errors) or reported; the others
are recorded all the same, and the step fails at the end, naming every failed customer-day.
"""

import dataclasses

import dagster as dg

from gridcat_pipelines.batch_ingest import PullResult, PullTask, ingest_many
from gridcat_pipelines.defs.ingestion.checks import rule_check_specs
from gridcat_pipelines.defs.ingestion.events import PULLED_CHECK, partition_events
from gridcat_pipelines.defs.ingestion.resources import AdsSourceResource
from gridcat_pipelines.defs.ingestion.run_scope import run_scope
from gridcat_pipelines.defs.resources import PipelineConfigResource, RawSinkResource, StateStoreResource
from gridcat_pipelines.feeds.models import FeedConfig
from gridcat_pipelines.validation.registry import active

RAW_GROUP = "google_ads_raw"
VALIDATED_GROUP = "google_ads_validated"
_FAILURES_IN_DESCRIPTION = 10


def raw_key(feed_name: str) -> dg.AssetKey:
    """``google_ads/raw/<feed>``."""
    return dg.AssetKey(["google_ads", "raw", feed_name])


def validated_key(feed_name: str) -> dg.AssetKey:
    """``google_ads/validated/<feed>``."""
    return dg.AssetKey(["google_ads", "validated", feed_name])


def failure_line(result: PullResult) -> str:
    """``pull of <feed> for <customer> on <day> failed: <error>``."""
    task = result.task
    return f"pull of {task.feed.name} for {task.customer.customer_id} on {task.day} failed: {result.error}"


def build_feed_assets(feed: FeedConfig, partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The ingest step of one feed (its raw and validated assets)."""
    raw = raw_key(feed.name)
    validated = validated_key(feed.name)
    rule_names = [rule.name for rule in active().for_feed(feed)]

    @dg.multi_asset(
        name=f"ingest_{feed.name}",
        specs=[
            dg.AssetSpec(
                raw,
                partitions_def=partitions_def,
                group_name=RAW_GROUP,
                kinds={"parquet"},
                skippable=True,
                description=f"Raw `{feed.name}` report pulled into an immutable run directory.\n\n```sql\n{feed.gaql}\n```",
                metadata={"query_name": feed.name, "schema_version": feed.schema_version},
            ),
            dg.AssetSpec(
                validated,
                deps=[raw],
                partitions_def=partitions_def,
                group_name=VALIDATED_GROUP,
                kinds={"python"},
                skippable=True,
                description=f"Validation of the newest `{feed.name}` raw run; writes the partition state.",
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                PULLED_CHECK,
                asset=raw,
                partitions_def=partitions_def,
                description="Every customer of the partition was pulled into a complete raw run.",
            ),
            *rule_check_specs(feed, validated, partitions_def),
        ],
        partitions_def=partitions_def,
        can_subset=True,  # outputs and checks are logged as events per partition, none is required
    )
    def ingest_feed(
        context: dg.AssetExecutionContext,
        ads_source: AdsSourceResource,
        raw_sink: RawSinkResource,
        state_store: StateStoreResource,
        pipeline_config: PipelineConfigResource,
    ):
        config = pipeline_config.config
        scope = run_scope(config, context.partition_keys, context.run.tags)
        unknown = sorted({c for part in scope for c in part.customer_ids if c not in config.customers})
        if unknown:  # a partition or tag naming a customer the config no longer has: nothing to pull with
            context.log.warning(f"not in the customer config, not pulled: {', '.join(unknown[:20])}")
            scope = [
                dataclasses.replace(part, customer_ids=tuple(c for c in part.customer_ids if c in config.customers))
                for part in scope
            ]
        tasks = [
            PullTask(feed, config.customers[customer_id], part.day)
            for part in scope
            for customer_id in part.customer_ids
        ]
        context.log.info(
            f"{feed.name}: {len(tasks)} customer-day(s) in {len(scope)} partition(s), "
            f"up to {ads_source.max_in_flight} request(s) in flight"
        )
        progress = _Progress(context, feed.name, len(tasks))
        results = ingest_many(
            ads_source.source,
            raw_sink.sink,
            state_store.store,
            tasks,
            max_in_flight=ads_source.max_in_flight,
            on_result=progress,
        )
        start = 0
        for part in scope:  # tasks (and results) are in partition order
            part_results = results[start : start + len(part.customer_ids)]
            start += len(part.customer_ids)
            if not part_results:
                continue
            for event in partition_events(
                part.partition_key,
                part_results,
                raw,
                validated,
                rule_names,
                lambda r: raw_sink.sink.run_uri(r.task.key, r.meta.run_id),
            ):
                if _selected(context, event):
                    context.log_event(event)
        failed = [r for r in results if r.error is not None]
        for result in failed:
            context.log.warning(failure_line(result))
        if failed:
            shown = "; ".join(failure_line(r) for r in failed[:_FAILURES_IN_DESCRIPTION])
            more = (
                f" (+{len(failed) - _FAILURES_IN_DESCRIPTION} more)" if len(failed) > _FAILURES_IN_DESCRIPTION else ""
            )
            raise dg.Failure(
                description=shown + more
                if len(failed) == 1
                else f"{len(failed)} of {len(tasks)} pull(s) failed: {shown}{more}",
                metadata={"failed": dg.MetadataValue.json([failure_line(r) for r in failed[:500]])},
                allow_retries=False,
            )
        yield from ()

    return [ingest_feed]


def _selected(context: dg.AssetExecutionContext, event) -> bool:
    """Whether the run selected the asset or check ``event`` is for (a subset still pulls and
    validates: the partition state is what the step is for)."""
    if isinstance(event, dg.AssetCheckEvaluation):
        return dg.AssetCheckKey(event.asset_key, event.check_name) in context.selected_asset_check_keys
    return event.asset_key in context.selected_asset_keys


class _Progress:
    """Logs progress about every 10% of a step's customer-days (long runs show they move)."""

    def __init__(self, context: dg.AssetExecutionContext, feed_name: str, total: int):
        self.context, self.feed_name, self.total, self.done = context, feed_name, total, 0
        self.step = max(1, total // 10)

    def __call__(self, result: PullResult) -> None:
        self.done += 1
        if self.total >= 20 and (self.done % self.step == 0 or self.done == self.total):
            self.context.log.info(f"{self.feed_name}: {self.done}/{self.total} customer-day(s) done")
