"""Per-feed assets: ``google_ads/raw/<feed>`` (extract into a raw run) and
``google_ads/validated/<feed>`` (validate that run, write the partition state, report checks)."""

from dataclasses import dataclass

import dagster as dg

from gridcat_pipelines.defs.ingestion.checks import rule_check_results, rule_check_specs
from gridcat_pipelines.defs.ingestion.partitions import partition_dims
from gridcat_pipelines.defs.ingestion.resources import AdsSourceResource
from gridcat_pipelines.defs.resources import PipelineConfigResource, RawSinkResource, StateStoreResource
from gridcat_pipelines.feeds.models import FeedConfig
from gridcat_pipelines.ingest import partition_key, pull_raw_run, validate_and_record
from gridcat_pipelines.sources.base import SourceError, TransientSourceError
from gridcat_pipelines.validation.report import ValidationReport

RAW_GROUP = "google_ads_raw"
VALIDATED_GROUP = "google_ads_validated"

# Transient source errors (quota, 5xx) are retried with backoff; other failures are not.
TRANSIENT_RETRY = dg.RetryPolicy(max_retries=3, delay=0.5, backoff=dg.Backoff.EXPONENTIAL)


def raw_key(feed_name: str) -> dg.AssetKey:
    """``google_ads/raw/<feed>``."""
    return dg.AssetKey(["google_ads", "raw", feed_name])


def validated_key(feed_name: str) -> dg.AssetKey:
    """``google_ads/validated/<feed>``."""
    return dg.AssetKey(["google_ads", "validated", feed_name])


@dataclass(frozen=True)
class RawRunRef:
    """What the raw asset hands to validation: the run it just committed."""

    run_id: str
    uri: str


def build_feed_assets(feed: FeedConfig, partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The raw and validated assets of one feed."""
    raw = raw_key(feed.name)
    validated = validated_key(feed.name)

    @dg.asset(
        key=raw,
        partitions_def=partitions_def,
        retry_policy=TRANSIENT_RETRY,
        group_name=RAW_GROUP,
        kinds={"parquet"},
        description=f"Raw `{feed.name}` report pulled into an immutable run directory.\n\n```sql\n{feed.gaql}\n```",
        metadata={"query_name": feed.name, "schema_version": feed.schema_version},
    )
    def raw_asset(
        context: dg.AssetExecutionContext,
        ads_source: AdsSourceResource,
        raw_sink: RawSinkResource,
        pipeline_config: PipelineConfigResource,
    ) -> dg.MaterializeResult:
        customer_id, day = partition_dims(context.partition_key)
        customer = pipeline_config.customer(customer_id)
        try:
            meta = pull_raw_run(
                ads_source.source, raw_sink.sink, feed, customer, day, retry_number=context.retry_number
            )
        except TransientSourceError:
            raise  # retried by TRANSIENT_RETRY
        except SourceError as exc:
            raise dg.Failure(
                description=f"pull of {feed.name} for {customer_id} on {day} failed: {exc}",
                allow_retries=False,
            ) from exc
        key = partition_key(feed, customer, day)
        uri = raw_sink.sink.run_uri(key, meta.run_id)
        size = sum(f.bytes for f in meta.files)
        return dg.MaterializeResult(
            value=RawRunRef(run_id=meta.run_id, uri=uri),
            metadata={
                "run_id": meta.run_id,
                "path": dg.MetadataValue.path(uri),
                "rows": meta.record_count,
                "bytes": size,
                "files": len(meta.files),
                "schema_version": meta.schema_version,
                "source": meta.source_name or "",
                "summary": dg.MetadataValue.md(
                    f"**{meta.record_count}** rows of `{feed.name}` for customer `{customer_id}` on "
                    f"{day}, run `{meta.run_id}` ({len(meta.files)} file(s), {size} bytes)."
                ),
            },
        )

    @dg.multi_asset(
        name=f"validate_{feed.name}",
        specs=[
            dg.AssetSpec(
                validated,
                deps=[raw],
                partitions_def=partitions_def,
                group_name=VALIDATED_GROUP,
                kinds={"python"},
                description=f"Validation of the newest `{feed.name}` raw run; writes the partition state.",
            )
        ],
        ins={"raw_run": dg.AssetIn(raw)},
        check_specs=rule_check_specs(feed, validated, partitions_def),
        partitions_def=partitions_def,
        can_subset=True,
    )
    def validated_asset(
        context: dg.AssetExecutionContext,
        raw_run: RawRunRef,
        state_store: StateStoreResource,
        raw_sink: RawSinkResource,
        pipeline_config: PipelineConfigResource,
    ):
        customer_id, day = partition_dims(context.partition_key)
        customer = pipeline_config.customer(customer_id)
        key = partition_key(feed, customer, day)
        result = validate_and_record(state_store.store, raw_sink.sink, feed, customer, key, raw_run.run_id)
        state = result.outcome.state
        context.log.info(
            f"{key}: run {raw_run.run_id} {'passed' if result.report.passed else 'failed'}; "
            f"state {state.status} at {state.current_run_id} ({result.outcome.outcome})"
        )
        yield dg.MaterializeResult(
            asset_key=validated,
            metadata={
                "run_id": raw_run.run_id,
                "status": "success" if result.report.passed else "failed",
                "outcome": result.outcome.outcome,
                "state_status": state.status,
                "authoritative_run_id": state.current_run_id or "",
                "state_version": state.version,
                "rows": result.report.record_count or 0,
                "error_message": state.error_message or "",
                "summary": dg.MetadataValue.md(_markdown(result.report)),
            },
        )
        yield from rule_check_results(result.report, validated)

    return [raw_asset, validated_asset]


def _markdown(report: ValidationReport) -> str:
    lines = ["| rule | result | failing rows | message |", "|---|---|---|---|"]
    for rule in report.rules:
        verdict = "skipped" if rule.skipped else ("pass" if rule.passed else "**FAIL**")
        message = rule.message.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {rule.rule} | {verdict} | {rule.failing_rows} | {message} |")
    return "\n".join(lines)
