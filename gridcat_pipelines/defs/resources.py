"""Resources every domain shares (the state store, the raw sink, the pipeline config) and the
one place that binds all resources to their settings.

Resources never read the environment: :func:`build_resources` hands them their values from
``Settings``, and every setting that may hold a secret (``config.SECRET_VARIABLES``: the
state and warehouse database URLs) as ``dg.EnvVar`` when it came from the process
environment, so Dagster resolves it in the run and shows only the variable's name.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import dagster as dg

from gridcat_pipelines.config import GOOGLE_ADS_VARIABLES, Settings, cached_pipeline_config
from gridcat_pipelines.errors import not_found
from gridcat_pipelines.feeds.models import CustomerConfig, FeedConfig, PipelineConfig
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.state import StateStore

if TYPE_CHECKING:
    from gridcat_pipelines.facet_types import CatalogServices


class StateStoreResource(dg.ConfigurableResource):
    """The partition state store at ``db_url`` (SQLite or PostgreSQL)."""

    db_url: str
    upgrade_on_open: bool = True

    @property
    def store(self) -> StateStore:
        """The opened store (migrated first when ``upgrade_on_open``), shared per process and URL."""
        return _open_store(self.db_url, self.upgrade_on_open)

    def open_catalog(self) -> CatalogServices:
        """The facet type catalog in the same database (its tables live there too)."""
        from gridcat_pipelines.facet_types import open_catalog

        return open_catalog(self.db_url, upgrade=self.upgrade_on_open, actor="dagster")


_STORES: dict[tuple[str, bool], StateStore] = {}
_MAX_STORES = 8


def _open_store(url: str, upgrade: bool) -> StateStore:
    """One store (engine and connection pool) per URL per process: sensors and assets re-create
    their resources on every tick and step, and migrating and checking the schema each time
    would dominate a small tick. The oldest store is closed when more than a few are open."""
    key = (url, upgrade)
    store = _STORES.get(key)
    if store is None:
        store = _STORES[key] = StateStore.open(url, upgrade=upgrade)
        while len(_STORES) > _MAX_STORES:
            _STORES.pop(next(iter(_STORES))).close()
    return store


class RawSinkResource(dg.ConfigurableResource):
    """Where raw runs land: a directory or an object-store URI."""

    root: str

    @cached_property
    def sink(self) -> RawSink:
        """The raw sink."""
        return RawSink(self.root)


class PipelineConfigResource(dg.ConfigurableResource):
    """Feeds and customers from the YAML files at these paths."""

    feeds_path: str
    customers_path: str
    synthetic_source: bool = True  # the synthetic source pulls: every feed must be one it generates

    @cached_property
    def config(self) -> PipelineConfig:
        """The loaded, validated config."""
        return cached_pipeline_config(self.feeds_path, self.customers_path, synthetic_source=self.synthetic_source)

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


def from_env_or_value(settings: Settings, variable: str, value: str) -> str | dg.EnvVar:
    """``dg.EnvVar(variable)`` when ``settings`` read ``variable`` from the process environment
    (Dagster then shows its name, never its value), else the value itself."""
    return dg.EnvVar(variable) if variable in settings.from_process_env else value


def build_resources(settings: Settings, *, ads_source: dg.ConfigurableResource | None = None) -> dict:
    """Every resource of the code location, bound to ``settings``."""
    from gridcat_pipelines.defs.gate.resources import WarehouseResource

    return {
        "state_store": StateStoreResource(db_url=from_env_or_value(settings, "GRIDCAT_DB_URL", settings.db_url)),
        "raw_sink": RawSinkResource(root=str(settings.raw_root)),
        "ads_source": ads_source or ads_source_resource(settings),
        "pipeline_config": PipelineConfigResource(
            feeds_path=str(settings.feeds_path),
            customers_path=str(settings.customers_path),
            synthetic_source=settings.source == "synthetic",
        ),
        "warehouse": WarehouseResource(
            root=settings.warehouse_location,
            kind=settings.warehouse_kind,
            url=from_env_or_value(settings, "GRIDCAT_WAREHOUSE_URL", settings.warehouse_url),
        ),
    }


def ads_source_resource(settings: Settings) -> dg.ConfigurableResource:
    """The Ads source of ``GRIDCAT_SOURCE``; for ``google_ads`` every ``GOOGLE_ADS_*`` setting that
    is set goes in as ``dg.EnvVar`` (a value given by a test's settings goes in as it is)."""
    from gridcat_pipelines.defs.ingestion.resources import AdsSourceResource

    google_ads = {
        key: from_env_or_value(settings, GOOGLE_ADS_VARIABLES[key], value) for key, value in settings.google_ads.items()
    }
    return AdsSourceResource(
        kind=settings.source,
        api_version=settings.google_ads_api_version,
        max_in_flight=settings.ads_max_in_flight,
        latency_ms=settings.synthetic_latency_ms,
        batch_delay_ms=settings.synthetic_batch_delay_ms,
        **google_ads,
    )


@dg.definitions
def resources() -> dg.Definitions:
    """The shared resources, bound to the settings of the environment (``dg`` loads this)."""
    return dg.Definitions(resources=build_resources(Settings.from_env()))
