"""The config edge: the only place gridcat reads environment variables.

``GRIDCAT_HOME`` (default ``./.gridcat``) holds the embedded defaults: ``state.db`` (SQLite),
``raw/``, ``warehouse/`` and ``dagster/`` (the Dagster instance unless ``DAGSTER_HOME`` is set).
``GRIDCAT_DB_URL`` points the state store elsewhere (e.g. ``postgresql+psycopg://...``).
``GRIDCAT_FEEDS_CONFIG`` / ``GRIDCAT_CUSTOMERS_CONFIG`` override ``config/google_apis.yaml`` /
``config/customers.yaml``. ``GRIDCAT_WAREHOUSE_URL`` (a PostgreSQL URL) loads the warehouse into
that database instead of the Parquet dataset under ``$GRIDCAT_HOME/warehouse``;
``GRIDCAT_WAREHOUSE=iceberg`` into Iceberg tables (the ``gridcat`` catalog pyiceberg is
configured with, else a SQLite catalog under ``$GRIDCAT_HOME/iceberg``).
``GRIDCAT_API_ADMIN_TOKENS`` / ``GRIDCAT_API_READ_TOKENS`` (comma-separated) are the bearer tokens
``gridcat serve`` accepts. ``GRIDCAT_SOURCE`` is ``synthetic`` (default) or ``google_ads``; the
Google Ads credentials follow the google-ads library's own conventions: its ``GOOGLE_ADS_*``
variables (:data:`GOOGLE_ADS_KEYS`) and ``GOOGLE_ADS_CONFIGURATION_FILE_PATH`` (a
``google-ads.yaml``); ``GRIDCAT_GOOGLE_ADS_API_VERSION`` overrides the API version the adapter
pins (``sources.google_ads.DEFAULT_API_VERSION``). ``GRIDCAT_ADS_MAX_IN_FLIGHT`` (default 8) caps the
API requests one run keeps in flight; ``GRIDCAT_SYNTHETIC_LATENCY_MS`` and
``GRIDCAT_SYNTHETIC_BATCH_DELAY_MS`` give the synthetic source a simulated round-trip per query
and a delay per streamed batch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.feeds.loader import load_pipeline_config
from gridcat_pipelines.feeds.models import PipelineConfig
from gridcat_pipelines.sources.google_ads import ENV_PREFIX, SETTING_KEYS, google_ads_settings_from

CONFIGURATION_FILE_KEY = "configuration_file_path"

REPO_ROOT = Path(__file__).resolve().parents[1]
# Settings that may hold a secret (a database URL with its password, a token): the Dagster
# layer hands them to resources as ``dg.EnvVar(name)`` when they came from the process
# environment, so the value never reaches the Dagster UI, run config or logs.
SOURCES = ("synthetic", "google_ads")
# The google-ads library's own settings (``sources.google_ads.SETTING_KEYS``, each read from
# GOOGLE_ADS_<KEY> as the library does) and the google-ads.yaml path: one list for both.
GOOGLE_ADS_KEYS = (*SETTING_KEYS, CONFIGURATION_FILE_KEY)
GOOGLE_ADS_VARIABLES = {key: ENV_PREFIX + key.upper() for key in GOOGLE_ADS_KEYS}
WAREHOUSE_KINDS = ("parquet", "postgres", "iceberg")
SECRET_VARIABLES = ("GRIDCAT_DB_URL", "GRIDCAT_WAREHOUSE_URL", *GOOGLE_ADS_VARIABLES.values())


def checked_warehouse_kind(kind: str, warehouse_url: str, given_as: str = "GRIDCAT_WAREHOUSE") -> str:
    """``kind`` when it is a warehouse target these settings can open (``INVALID_ARGUMENT``
    naming ``given_as`` otherwise: an unknown kind, or postgres without a URL)."""
    if kind not in WAREHOUSE_KINDS:
        raise invalid_argument(f"{given_as}={kind!r}: use {', '.join(WAREHOUSE_KINDS)}")
    if kind == "postgres" and not warehouse_url:
        raise invalid_argument(f"{given_as}=postgres needs GRIDCAT_WAREHOUSE_URL (postgresql://...)")
    return kind


@dataclass(frozen=True)
class Settings:
    """Locations and URLs resolved from the environment once, then passed around explicitly."""

    home: Path
    db_url: str = field(repr=False)  # may carry a password
    dagster_home: Path
    feeds_path: Path = REPO_ROOT / "config" / "google_apis.yaml"
    customers_path: Path = REPO_ROOT / "config" / "customers.yaml"
    warehouse_url: str = field(default="", repr=False)  # a PostgreSQL URL: the warehouse goes there
    # GRIDCAT_WAREHOUSE: parquet | postgres | iceberg (default: postgres with a URL, else parquet)
    warehouse_kind: str = "parquet"
    api_admin_tokens: str = field(default="", repr=False)  # comma-separated; never printed
    api_read_tokens: str = field(default="", repr=False)
    source: str = "synthetic"  # GRIDCAT_SOURCE: synthetic | google_ads
    google_ads_api_version: str = ""  # GRIDCAT_GOOGLE_ADS_API_VERSION; empty: the adapter's pinned one
    ads_max_in_flight: int = 8  # GRIDCAT_ADS_MAX_IN_FLIGHT: API requests one run keeps in flight
    synthetic_latency_ms: float = 0.0  # GRIDCAT_SYNTHETIC_LATENCY_MS: per query
    synthetic_batch_delay_ms: float = 0.0  # GRIDCAT_SYNTHETIC_BATCH_DELAY_MS: per streamed batch
    # the google-ads library's settings that are set, by its key (GOOGLE_ADS_KEYS); never printed
    google_ads: Mapping[str, str] = field(default_factory=dict, repr=False)
    # which SECRET_VARIABLES were read from the process environment (os.environ)
    from_process_env: frozenset[str] = frozenset()

    @property
    def raw_root(self) -> Path:
        """Where raw runs land by default."""
        return self.home / "raw"

    @property
    def warehouse_root(self) -> Path:
        """Where the embedded Parquet warehouse lives by default."""
        return self.home / "warehouse"

    @property
    def warehouse_location(self) -> str:
        """The ``root`` of the configured warehouse target: the Parquet dataset's directory, or
        ``GRIDCAT_HOME`` for Iceberg (its default catalog lives under ``iceberg/``)."""
        return str(self.home if self.warehouse_kind == "iceberg" else self.warehouse_root)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Resolve settings from ``env`` (default: ``os.environ``)."""
        process = env is None
        env = os.environ if env is None else env
        home = Path(env.get("GRIDCAT_HOME") or ".gridcat").expanduser().resolve()
        db_url = env.get("GRIDCAT_DB_URL") or f"sqlite:///{home / 'state.db'}"
        dagster_home = Path(env.get("DAGSTER_HOME") or home / "dagster").expanduser().resolve()
        feeds = env.get("GRIDCAT_FEEDS_CONFIG") or REPO_ROOT / "config" / "google_apis.yaml"
        customers = env.get("GRIDCAT_CUSTOMERS_CONFIG") or REPO_ROOT / "config" / "customers.yaml"
        source = env.get("GRIDCAT_SOURCE") or "synthetic"
        if source not in SOURCES:
            raise invalid_argument(f"GRIDCAT_SOURCE={source!r}: use {' or '.join(SOURCES)}")
        warehouse_url = env.get("GRIDCAT_WAREHOUSE_URL") or ""
        warehouse_kind = checked_warehouse_kind(
            env.get("GRIDCAT_WAREHOUSE") or ("postgres" if warehouse_url else "parquet"), warehouse_url
        )
        return cls(
            home=home,
            db_url=db_url,
            dagster_home=dagster_home,
            feeds_path=Path(feeds).expanduser().resolve(),
            customers_path=Path(customers).expanduser().resolve(),
            warehouse_url=warehouse_url,
            warehouse_kind=warehouse_kind,
            api_admin_tokens=env.get("GRIDCAT_API_ADMIN_TOKENS") or "",
            api_read_tokens=env.get("GRIDCAT_API_READ_TOKENS") or "",
            source=source,
            google_ads_api_version=env.get("GRIDCAT_GOOGLE_ADS_API_VERSION") or "",
            ads_max_in_flight=_number(env, "GRIDCAT_ADS_MAX_IN_FLIGHT", 8, int, 1, 1000),
            synthetic_latency_ms=_number(env, "GRIDCAT_SYNTHETIC_LATENCY_MS", 0.0, float, 0, 600_000),
            synthetic_batch_delay_ms=_number(env, "GRIDCAT_SYNTHETIC_BATCH_DELAY_MS", 0.0, float, 0, 600_000),
            google_ads=_google_ads_settings(env),
            from_process_env=frozenset(n for n in SECRET_VARIABLES if process and env.get(n)),
        )

    def pipeline_config(self) -> PipelineConfig:
        """The feed and customer config at this setting's paths (parsed once per file version);
        feeds the synthetic source cannot generate load only when it is not the source."""
        return cached_pipeline_config(self.feeds_path, self.customers_path, synthetic_source=self.source == "synthetic")


def _number(env: Mapping[str, str], name: str, default, kind: type, low: float, high: float):
    """``env[name]`` as ``kind`` within ``low``..``high``, else ``default`` when unset; a clear error otherwise."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        kind_name = "an integer" if kind is int else "a number"
        raise invalid_argument(f"{name}={raw!r}: must be {kind_name} from {low:g} to {high:g}")
    return value


def _google_ads_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The google-ads settings ``env`` sets, by key, with the google-ads.yaml path among them."""
    settings, configuration_file = google_ads_settings_from(env)
    return {**settings, CONFIGURATION_FILE_KEY: configuration_file} if configuration_file else settings


@lru_cache(maxsize=8)
def _load_config(
    feeds_path: str, customers_path: str, stamp: tuple[float, float], synthetic_source: bool
) -> PipelineConfig:
    """Parse and check the config once per process and file version (``stamp`` = the files' mtimes)."""
    return load_pipeline_config(feeds_path, customers_path, synthetic_source=synthetic_source)


def cached_pipeline_config(
    feeds_path: str | Path, customers_path: str | Path, *, synthetic_source: bool = True
) -> PipelineConfig:
    """The config at these paths, re-read only when a file changed (see ``load_pipeline_config``
    for ``synthetic_source``)."""
    stamp = (Path(feeds_path).stat().st_mtime, Path(customers_path).stat().st_mtime)
    return _load_config(str(feeds_path), str(customers_path), stamp, synthetic_source)
