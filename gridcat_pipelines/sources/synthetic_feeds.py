"""Per-resource row generators of the synthetic source (vectorised with numpy).

Each generator takes a customer's :class:`Universe`, the day's traffic multiplier, a
Generator, ``min_rows`` and the source's ``scale``, and returns ``Rows``: equal-length arrays
keyed by column name, plus ``_campaign`` / ``_ad_group`` / ``_keyword`` / ``_term`` /
``_country`` indices into the universe's tables from which the remaining entity columns are
looked up (columns such as ``customer_id`` and ``segments_date`` come from the partition,
see ``_context`` in :mod:`.synthetic`). Rows whose metrics are all zero are dropped, as the
API does. ``min_rows`` > 0 forces at least that many rows with positive cost (clicks >= 1),
even on a dark day, for faults that need rows to alter.

A feed over a GAQL resource listed in :data:`GENERATORS` needs no code. A feed over another
resource fails config load until a generator for it is written here and added to
:data:`GENERATORS` (keyed by the feed's ``resource``); its rows must pass every rule of the
feed (``test_synthetic_source.py`` and ``test_validation.py`` check every configured feed).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gridcat_pipelines.sources.entities import (
    DEVICE_SHARES,
    DEVICES,
    LOCATION_SHARES,
    LOCATION_TYPES,
    NETWORK_SHARES,
    NETWORKS,
    Universe,
)

Rows = dict[str, np.ndarray]
METRICS = (
    "metrics_impressions",
    "metrics_clicks",
    "metrics_cost_micros",
    "metrics_conversions",
    "metrics_conversions_value",
)
CLICKS_PER_PARTITION = 3000  # click_view cap at scale 1.0
_GCLID_ALPHABET = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype="S1")


def _sample_metrics(rng, lam, campaign_idx, universe: Universe, ctr_factor=1.0) -> Rows:
    """Impressions, clicks, cost, conversions for rows with expected impressions ``lam``."""
    c = universe.campaigns
    n = len(lam)
    impressions = rng.poisson(lam * rng.lognormal(0.0, 0.35, n))
    ctr = c["_ctr"][campaign_idx] * ctr_factor * rng.lognormal(0.0, 0.2, n)
    ctr = np.clip(ctr, 0.0, 0.9)
    clicks = rng.binomial(impressions, ctr)
    cost = clicks * c["_cpc"][campaign_idx] * rng.lognormal(0.0, 0.15, n)
    cost += impressions * c["_cpm"][campaign_idx] / 1000.0
    cost = (np.round(cost / 10_000) * 10_000).astype(np.int64)
    cost = np.where(clicks > 0, np.maximum(cost, 10_000), cost)
    conversions_whole = rng.binomial(clicks, c["_cvr"][campaign_idx])
    conversions = np.round(conversions_whole * rng.uniform(0.6, 1.0, n), 2)
    value = np.round(conversions * c["_aov"][campaign_idx] * rng.lognormal(0.0, 0.3, n), 2)
    return dict(zip(METRICS, (impressions.astype(np.int64), clicks.astype(np.int64), cost, conversions, value)))


def _ensure_rows(metrics: Rows, lam: np.ndarray, min_rows: int) -> None:
    """Give the likeliest zero-cost rows some traffic until ``min_rows`` rows have cost."""
    cost = metrics["metrics_cost_micros"]
    short = min_rows - int((cost > 0).sum())
    if short <= 0:
        return
    candidates = np.flatnonzero(cost <= 0)
    bump = candidates[np.argsort(-lam[candidates], kind="stable")][:short]
    metrics["metrics_impressions"][bump] = np.maximum(metrics["metrics_impressions"][bump], 25)
    metrics["metrics_clicks"][bump] = np.maximum(metrics["metrics_clicks"][bump], 1)
    cost[bump] = np.maximum(cost[bump], 250_000)


def _finish(rows: Rows, lam: np.ndarray, min_rows: int) -> Rows:
    """Enforce ``min_rows`` and drop all-zero rows."""
    _ensure_rows(rows, lam, min_rows)
    keep = (rows["metrics_impressions"] > 0) | (rows["metrics_cost_micros"] != 0)
    return {k: v[keep] for k, v in rows.items()}


def _grid(*sizes: int) -> list[np.ndarray]:
    """Flattened index arrays of the cartesian product of ``range(size)`` for each size."""
    return [g.ravel() for g in np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij")]


def campaign_rows(u: Universe, activity: float, rng, min_rows: int, scale: float = 1.0) -> Rows:
    """``FROM campaign``: enabled campaigns x devices."""
    live = np.flatnonzero(u.campaigns["_active"])
    ci, di = _grid(len(live), len(DEVICES))
    camp = live[ci]
    share = DEVICE_SHARES[u.campaigns["_channel"][camp], di]
    camp, di, share = camp[share > 0], di[share > 0], share[share > 0]
    lam = u.volume * activity * u.campaigns["_weight"][camp] * share
    rows = {"_campaign": camp, "segments_device": DEVICES[di], **_sample_metrics(rng, lam, camp, u)}
    return _finish(rows, lam, min_rows)


def _ad_group_lam(u: Universe, groups: np.ndarray, activity: float) -> np.ndarray:
    camp = u.ad_groups["_campaign"][groups]
    return u.volume * activity * u.campaigns["_weight"][camp] * u.ad_groups["_share"][groups]


def ad_group_rows(u: Universe, activity: float, rng, min_rows: int, scale: float = 1.0) -> Rows:
    """``FROM ad_group``: enabled ad groups of enabled campaigns x devices."""
    live = np.flatnonzero(u.ad_groups["_active"])
    gi, di = _grid(len(live), len(DEVICES))
    group = live[gi]
    camp = u.ad_groups["_campaign"][group]
    share = DEVICE_SHARES[u.campaigns["_channel"][camp], di]
    keep = share > 0
    group, camp, di, share = group[keep], camp[keep], di[keep], share[keep]
    lam = _ad_group_lam(u, group, activity) * share
    rows = {"_ad_group": group, "_campaign": camp, "segments_device": DEVICES[di], **_sample_metrics(rng, lam, camp, u)}
    return _finish(rows, lam, min_rows)


def keyword_view_rows(u: Universe, activity: float, rng, min_rows: int, scale: float = 1.0) -> Rows:
    """``FROM keyword_view``: enabled keywords of live search ad groups."""
    k = u.keywords
    live = np.flatnonzero(k["_active"])
    group = k["_ad_group"][live]
    camp = u.ad_groups["_campaign"][group]
    lam = _ad_group_lam(u, group, activity) * k["_share"][live]
    quality = k["ad_group_criterion_quality_info_quality_score"][live].filled(6)
    rows = {
        "_keyword": live,
        "_ad_group": group,
        "_campaign": camp,
        **_sample_metrics(rng, lam, camp, u, ctr_factor=0.4 + quality / 10),
    }
    return _finish(rows, lam, min_rows)


def search_term_view_rows(u: Universe, activity: float, rng, min_rows: int, scale: float = 1.0) -> Rows:
    """``FROM search_term_view``: the terms matched by enabled keywords."""
    k, t = u.keywords, u.search_terms
    live = np.flatnonzero(k["_active"][t["_keyword"]])
    keyword = t["_keyword"][live]
    group = k["_ad_group"][keyword]
    camp = u.ad_groups["_campaign"][group]
    lam = _ad_group_lam(u, group, activity) * k["_share"][keyword] * t["_share"][live]
    rows = {
        "_term": live,
        "_keyword": keyword,
        "_ad_group": group,
        "_campaign": camp,
        "segments_keyword_info_text": k["ad_group_criterion_keyword_text"][keyword],
        "segments_keyword_info_match_type": k["ad_group_criterion_keyword_match_type"][keyword],
        **_sample_metrics(rng, lam, camp, u),
    }
    return _finish(rows, lam, min_rows)


def geographic_view_rows(u: Universe, activity: float, rng, min_rows: int, scale: float = 1.0) -> Rows:
    """``FROM geographic_view``: enabled campaigns x countries x location types."""
    live = np.flatnonzero(u.campaigns["_active"])
    ci, gi, li = _grid(len(live), len(u.countries["_share"]), len(LOCATION_TYPES))
    camp = live[ci]
    lam = u.volume * activity * u.campaigns["_weight"][camp] * u.countries["_share"][gi] * LOCATION_SHARES[li]
    rows = {
        "_campaign": camp,
        "_country": gi,
        "geographic_view_location_type": LOCATION_TYPES[li],
        **_sample_metrics(rng, lam, camp, u),
    }
    return _finish(rows, lam, min_rows)


def account_rows(u: Universe, activity: float, rng, min_rows: int, scale: float = 1.0) -> Rows:
    """``FROM customer``: campaign traffic summed by device x network."""
    live = np.flatnonzero(u.campaigns["_active"])
    ci, di, ni = _grid(len(live), len(DEVICES), len(NETWORKS))
    camp = live[ci]
    channel = u.campaigns["_channel"][camp]
    share = DEVICE_SHARES[channel, di] * NETWORK_SHARES[channel, ni]
    keep = share > 0
    camp, di, ni, share = camp[keep], di[keep], ni[keep], share[keep]
    lam = u.volume * activity * u.campaigns["_weight"][camp] * share
    fine = _sample_metrics(rng, lam, camp, u)
    cell = di * len(NETWORKS) + ni
    cells = len(DEVICES) * len(NETWORKS)
    rows: Rows = {}
    for name, values in fine.items():
        summed = np.bincount(cell, weights=values, minlength=cells)
        rows[name] = summed.astype(np.int64) if values.dtype.kind == "i" else np.round(summed, 2)
    cell_lam = np.bincount(cell, weights=lam, minlength=cells)
    rows["segments_device"] = np.repeat(DEVICES, len(NETWORKS))
    rows["segments_ad_network_type"] = np.tile(NETWORKS, len(DEVICES))
    possible = np.bincount(cell, minlength=cells) > 0
    rows = {k: v[possible] for k, v in rows.items()}
    return _finish(rows, cell_lam[possible], min_rows)


def click_view_rows(u: Universe, activity: float, rng, min_rows: int, scale: float) -> Rows:
    """``FROM click_view``: one row per click on a live ad group, capped per partition."""
    g, k = u.ad_groups, u.keywords
    live = np.flatnonzero(g["_active"])
    gi, di = _grid(len(live), len(DEVICES))
    group = live[gi]
    camp = g["_campaign"][group]
    channel = u.campaigns["_channel"][camp]
    weight = _ad_group_lam(u, group, 1.0) * DEVICE_SHARES[channel, di] * u.campaigns["_ctr"][camp]
    expected = float(weight.sum()) * activity
    n = min(int(rng.poisson(expected)), int(CLICKS_PER_PARTITION * scale))
    n = max(n, min_rows)
    if n == 0 or weight.sum() <= 0:
        return {}
    pick = rng.choice(len(weight), size=n, p=weight / weight.sum())
    group, camp, channel, device = group[pick], camp[pick], channel[pick], DEVICES[di[pick]]
    # the keyword clicked: a live keyword of the ad group (none outside search)
    live_kw = np.flatnonzero(k["_active"])
    kw_group = k["_ad_group"][live_kw]
    first = np.searchsorted(kw_group, group, side="left")
    count = np.searchsorted(kw_group, group, side="right") - first
    has_kw = count > 0
    kw = live_kw[np.minimum(first + (rng.random(n) * count).astype(np.int64), len(live_kw) - 1)]
    text = np.where(has_kw, k["ad_group_criterion_keyword_text"][kw], None)
    match = np.where(has_kw, k["ad_group_criterion_keyword_match_type"][kw], None)
    page = np.ma.masked_array(rng.choice([1, 2, 3], size=n, p=[0.9, 0.08, 0.02]).astype(np.int64), mask=channel != 0)
    return {
        "_ad_group": group,
        "_campaign": camp,
        "click_view_gclid": _gclids(rng, n),
        "click_view_keyword_info_text": text.astype(object),
        "click_view_keyword_info_match_type": match.astype(object),
        "click_view_page_number": page,
        "segments_click_type": _click_types(rng, channel),
        "segments_device": device,
        "metrics_clicks": np.ones(n, dtype=np.int64),
    }


_CLICK_TYPES = {  # channel index -> (click types, probabilities)
    0: (
        [
            "URL_CLICKS",
            "SITELINKS",
            "CALLS",
            "CALL_TRACKING",
            "GET_DIRECTIONS",
            "PRICE_EXTENSION",
            "PROMOTION_EXTENSION",
        ],
        [0.78, 0.1, 0.05, 0.02, 0.02, 0.015, 0.015],
    ),
    1: (["PRODUCT_LISTING_AD_CLICKS", "CROSS_NETWORK"], [0.95, 0.05]),
    2: (["URL_CLICKS"], [1.0]),
    3: (["VIDEO_WEBSITE_CLICKS", "URL_CLICKS"], [0.9, 0.1]),
}


def _click_types(rng, channel: np.ndarray) -> np.ndarray:
    out = np.empty(len(channel), dtype=object)
    for ch, (types, probs) in _CLICK_TYPES.items():
        at = np.flatnonzero(channel == ch)
        if len(at):
            out[at] = rng.choice(np.array(types, dtype=object), size=len(at), p=probs)
    out[out == None] = "URL_CLICKS"  # noqa: E711 (elementwise comparison)
    return out


def _gclids(rng, n: int) -> np.ndarray:
    """``n`` distinct gclid-looking strings (URL-safe base64 alphabet)."""
    chars = _GCLID_ALPHABET[rng.integers(0, 64, size=(n, 40))]
    body = chars.view("S40").ravel().astype(str)
    return np.char.add("Cj0KCQiA", body).astype(object)


# generate(universe, activity, rng, min_rows, scale) -> Rows
Generator = Callable[[Universe, float, np.random.Generator, int, float], Rows]
# The row generator of each GAQL resource (a feed's ``resource``) the synthetic source knows.
GENERATORS: dict[str, Generator] = {
    "campaign": campaign_rows,
    "ad_group": ad_group_rows,
    "keyword_view": keyword_view_rows,
    "search_term_view": search_term_view_rows,
    "geographic_view": geographic_view_rows,
    "customer": account_rows,
    "click_view": click_view_rows,
}
