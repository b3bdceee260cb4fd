"""The ingestion domain's own resource: the Ads source."""

from __future__ import annotations

from functools import cached_property

import dagster as dg

from gridcat_pipelines.sources.base import AdsSource
from gridcat_pipelines.sources.faults import FaultPlan
from gridcat_pipelines.sources.synthetic import SyntheticSource


class AdsSourceResource(dg.ConfigurableResource):
    """The Ads source: ``synthetic`` (deterministic, with fault injection) or ``google_ads``.

    For ``google_ads`` the fields below ``forced_faults`` are the google-ads library's own
    settings (``GOOGLE_ADS_<FIELD>``); ``build_resources`` gives every one that is set as
    ``dg.EnvVar``, so no token reaches the Dagster UI, run config or logs. Unset ones stay
    empty and are not passed to the library.
    """

    kind: str = "synthetic"
    api_version: str = ""  # empty: the version the adapter pins
    seed: int = 0
    fault_rate: float = 0.0
    # "<customer_id>|<query_name>|<YYYY-MM-DD>" -> fault kind, injected on that partition's first pull
    forced_faults: dict[str, str] = {}
    max_in_flight: int = 8  # API requests one run keeps in flight (per developer token, per run)
    latency_ms: float = 0.0  # synthetic only: simulated round-trip per query
    batch_delay_ms: float = 0.0  # synthetic only: simulated delay per streamed batch
    developer_token: str = ""
    client_id: str = ""
    client_secret: str = ""
    refresh_token: str = ""
    json_key_file_path: str = ""
    impersonated_email: str = ""
    use_application_default_credentials: str = ""
    login_customer_id: str = ""
    linked_customer_id: str = ""
    endpoint: str = ""
    http_proxy: str = ""
    logging: str = ""
    ads_assistant: str = ""
    path_to_private_key_file: str = ""  # deprecated spellings the library still accepts
    delegated_account: str = ""
    configuration_file_path: str = ""

    @cached_property
    def source(self) -> AdsSource:
        """The configured source."""
        if self.kind == "synthetic":
            forced = {tuple(key.split("|")): kind for key, kind in self.forced_faults.items()}
            plan = FaultPlan(seed=self.seed, rate=self.fault_rate, forced=forced)
            return SyntheticSource(
                seed=self.seed, faults=plan, latency_ms=self.latency_ms, batch_delay_ms=self.batch_delay_ms
            )
        if self.kind == "google_ads":
            from gridcat_pipelines.sources.google_ads import SETTING_KEYS, GoogleAdsApiSource

            settings = {key: getattr(self, key) for key in SETTING_KEYS}
            return GoogleAdsApiSource(
                settings={key: value for key, value in settings.items() if value},
                configuration_file=self.configuration_file_path or None,
                **({"version": self.api_version} if self.api_version else {}),
            )
        raise ValueError(f"ads source kind {self.kind!r}: use synthetic or google_ads")
