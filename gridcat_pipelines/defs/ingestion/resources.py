"""The ingestion domain's own resource: the Ads source."""

from __future__ import annotations

from functools import cached_property

import dagster as dg

from gridcat_pipelines.sources.base import AdsSource
from gridcat_pipelines.sources.faults import FaultPlan
from gridcat_pipelines.sources.synthetic import SyntheticSource


class AdsSourceResource(dg.ConfigurableResource):
    """The Ads source: ``synthetic`` (deterministic, with fault injection) or ``google_ads``.

    For ``google_ads`` the credentials are given as ``dg.EnvVar`` of the ``GOOGLE_ADS_*``
    variables, never as literal values.
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
