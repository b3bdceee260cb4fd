"""Resources of the ingestion domain: the pipeline config, the Ads source and the raw sink."""

from __future__ import annotations

from functools import cached_property, lru_cache
from pathlib import Path

import dagster as dg

from gridcat_pipelines.config import Settings
from gridcat_pipelines.errors import not_found
from gridcat_pipelines.feeds.loader import load_pipeline_config
from gridcat_pipelines.feeds.models import CustomerConfig, FeedConfig, PipelineConfig
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.sources.base import AdsSource
from gridcat_pipelines.sources.faults import FaultPlan
from gridcat_pipelines.sources.synthetic import SyntheticSource


@lru_cache(maxsize=8)
def _load_config(feeds_path: str, customers_path: str, stamp: tuple[float, float]) -> PipelineConfig:
    """Parse and check the config once per process and file version (``stamp`` = the files' mtimes)."""
    return load_pipeline_config(feeds_path, customers_path)


def cached_pipeline_config(feeds_path: str | Path, customers_path: str | Path) -> PipelineConfig:
    """The config at these paths, re-read only when a file changed."""
    stamp = (Path(feeds_path).stat().st_mtime, Path(customers_path).stat().st_mtime)
    return _load_config(str(feeds_path), str(customers_path), stamp)


class PipelineConfigResource(dg.ConfigurableResource):
    """Feeds and customers from YAML; empty paths mean the defaults (``config/*.yaml``)."""

    feeds_path: str = ""
    customers_path: str = ""

    @cached_property
    def config(self) -> PipelineConfig:
        """The loaded, validated config."""
        settings = Settings.from_env()
        return cached_pipeline_config(
            self.feeds_path or settings.feeds_path, self.customers_path or settings.customers_path
        )

    def feed(self, name: str) -> FeedConfig:
        """The feed called ``name``."""
        try:
            return self.config.feeds[name]
        except KeyError:
            raise not_found(f"no feed {name!r} in the feed config") from None

    def customer(self, customer_id: str) -> CustomerConfig:
        """The configured customer ``customer_id`` (NOT_FOUND if it was removed from the config)."""
        try:
            return self.config.customers[customer_id]
        except KeyError:
            raise not_found(f"customer {customer_id} is not in the customer config") from None


class AdsSourceResource(dg.ConfigurableResource):
    """The Ads source: ``synthetic`` (deterministic, with fault injection) or ``google_ads``.

    For ``google_ads`` the credentials come from the ``GOOGLE_ADS_*`` settings (use
    ``dg.EnvVar`` in the deployment's resource config).
    """

    kind: str = "synthetic"
    seed: int = 0
    fault_rate: float = 0.0
    # "<customer_id>|<query_name>|<YYYY-MM-DD>" -> fault kind, injected on that partition's first pull
    forced_faults: dict[str, str] = {}
    developer_token: str = ""
    client_id: str = ""
    client_secret: str = ""
    refresh_token: str = ""
    login_customer_id: str = ""

    @cached_property
    def source(self) -> AdsSource:
        """The configured source."""
        if self.kind == "synthetic":
            forced = {tuple(key.split("|")): kind for key, kind in self.forced_faults.items()}
            plan = FaultPlan(seed=self.seed, rate=self.fault_rate, forced=forced)
            return SyntheticSource(seed=self.seed, faults=plan)
        if self.kind == "google_ads":
            from gridcat_pipelines.sources.google_ads import GoogleAdsApiSource

            return GoogleAdsApiSource(
                developer_token=self.developer_token,
                client_id=self.client_id,
                client_secret=self.client_secret,
                refresh_token=self.refresh_token,
                login_customer_id=self.login_customer_id or None,
            )
        raise ValueError(f"ads source kind {self.kind!r}: use synthetic or google_ads")


class RawSinkResource(dg.ConfigurableResource):
    """Where raw runs land: a directory or an object-store URI; empty means ``$GRIDCAT_HOME/raw``."""

    root: str = ""

    @cached_property
    def sink(self) -> RawSink:
        """The raw sink."""
        return RawSink(self.root or str(Settings.from_env().raw_root))
