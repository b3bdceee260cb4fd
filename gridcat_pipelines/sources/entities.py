"""The stable advertising entities behind one synthetic customer.

Built once per ``(seed, customer)``: campaigns (3-12, the first always an enabled brand
search campaign), ad groups per campaign, keywords per search ad group, the search terms
those keywords match, the countries the account serves, and the traffic profile (volume,
dark-day rate, weekend factor). Tables are dicts of equal-length numpy arrays; keys that
are column names (``campaign_id``) hold column values, keys starting with ``_`` hold
generator internals (parent indices, traffic shares, rates).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

import numpy as np

from gridcat_pipelines.feeds.models import CustomerConfig

Table = dict[str, np.ndarray]

DEVICES = np.array(["MOBILE", "DESKTOP", "TABLET", "CONNECTED_TV"], dtype=object)
NETWORKS = np.array(["SEARCH", "SEARCH_PARTNERS", "CONTENT", "YOUTUBE", "MIXED"], dtype=object)
LOCATION_TYPES = np.array(["LOCATION_OF_PRESENCE", "AREA_OF_INTEREST"], dtype=object)
LOCATION_SHARES = np.array([0.85, 0.15])

# channel: (probability, CTR, CPC in USD, CPM in USD, ad group types, bidding strategies,
#           device shares (MOBILE, DESKTOP, TABLET, CONNECTED_TV), network shares)
CHANNELS: dict[str, tuple] = {
    "SEARCH": (
        0.45,
        0.055,
        1.8,
        0.0,
        ("SEARCH_STANDARD", "SEARCH_DYNAMIC_ADS"),
        ("MANUAL_CPC", "TARGET_CPA", "MAXIMIZE_CONVERSIONS", "TARGET_IMPRESSION_SHARE"),
        (0.58, 0.34, 0.08, 0.0),
        (0.9, 0.1, 0, 0, 0),
    ),
    "SHOPPING": (
        0.15,
        0.012,
        0.7,
        0.0,
        ("SHOPPING_PRODUCT_ADS",),
        ("TARGET_ROAS", "MAXIMIZE_CONVERSION_VALUE", "MANUAL_CPC"),
        (0.65, 0.28, 0.07, 0.0),
        (0.85, 0.15, 0, 0, 0),
    ),
    "DISPLAY": (
        0.15,
        0.004,
        0.0,
        3.5,
        ("DISPLAY_STANDARD",),
        ("MAXIMIZE_CONVERSIONS", "TARGET_CPA", "MANUAL_CPM"),
        (0.7, 0.22, 0.08, 0.0),
        (0, 0, 1, 0, 0),
    ),
    "VIDEO": (
        0.10,
        0.006,
        0.0,
        6.0,
        ("VIDEO_RESPONSIVE", "VIDEO_TRUE_VIEW_IN_STREAM", "VIDEO_BUMPER"),
        ("TARGET_CPM", "MANUAL_CPV", "MAXIMIZE_CONVERSIONS"),
        (0.55, 0.15, 0.05, 0.25),
        (0, 0, 0, 1, 0),
    ),
    "PERFORMANCE_MAX": (
        0.15,
        0.015,
        0.9,
        0.0,
        (),
        ("MAXIMIZE_CONVERSION_VALUE", "MAXIMIZE_CONVERSIONS"),
        (0.6, 0.3, 0.07, 0.03),
        (0, 0, 0, 0, 1),
    ),
}
CHANNEL_NAMES = tuple(CHANNELS)
DEVICE_SHARES = np.array([CHANNELS[c][6] for c in CHANNEL_NAMES])  # channel x device
NETWORK_SHARES = np.array([CHANNELS[c][7] for c in CHANNEL_NAMES], dtype=float)
CURRENCY_FACTOR = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 150.0, "AUD": 1.5, "CAD": 1.35}

COUNTRIES = {  # ISO code -> geo target constant id
    "US": 2840,
    "CA": 2124,
    "GB": 2826,
    "DE": 2276,
    "FR": 2250,
    "ES": 2724,
    "IT": 2380,
    "NL": 2528,
    "AT": 2040,
    "CH": 2756,
    "IE": 2372,
    "SE": 2752,
    "AU": 2036,
    "NZ": 2554,
    "JP": 2392,
    "SG": 2702,
    "IN": 2356,
    "BR": 2076,
    "MX": 2484,
}
THEMES = {
    "outdoor": (
        "tents",
        "hiking boots",
        "sleeping bags",
        "backpacks",
        "rain jackets",
        "camping stoves",
        "trekking poles",
        "headlamps",
        "climbing shoes",
    ),
    "home": (
        "sofas",
        "rugs",
        "table lamps",
        "bed linen",
        "dining chairs",
        "curtains",
        "bookshelves",
        "mattresses",
        "throw pillows",
    ),
    "travel": (
        "city breaks",
        "beach holidays",
        "ski trips",
        "hotel deals",
        "cheap flights",
        "river cruises",
        "car hire",
        "family holidays",
        "spa weekends",
    ),
    "toys": (
        "lego sets",
        "board games",
        "dolls houses",
        "wooden toys",
        "jigsaw puzzles",
        "remote control cars",
        "science kits",
        "plush toys",
        "train sets",
    ),
    "software": (
        "crm software",
        "project management tool",
        "invoicing app",
        "help desk",
        "password manager",
        "time tracking",
        "email marketing",
        "cloud backup",
        "team chat",
    ),
}
KEYWORD_MODIFIERS = (
    "",
    "buy",
    "best",
    "cheap",
    "online",
    "sale",
    "discount",
    "top rated",
    "affordable",
    "premium",
    "shop",
    "order",
)
MATCH_TYPES = np.array(["EXACT", "PHRASE", "BROAD"], dtype=object)
TERM_SUFFIXES = (
    "",
    "near me",
    "for sale",
    "reviews",
    "2026",
    "deals",
    "free shipping",
    "best price",
    "how to choose",
    "open now",
    "uk",
    "comparison",
)


def digest_seed(*parts: object) -> int:
    """A 128-bit integer seed from ``parts`` (hashlib, so stable across processes)."""
    raw = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(raw[:16], "big")


def rng_for(*parts: object) -> np.random.Generator:
    """A numpy Generator seeded deterministically from ``parts``."""
    return np.random.default_rng(digest_seed(*parts))


@dataclass(frozen=True)
class Universe:
    """One customer's entities and traffic profile (see the module docstring)."""

    customer: CustomerConfig
    volume: float  # mean daily impressions of the whole account at scale 1.0
    dark_rate: float  # share of days with no traffic at all
    weekend_factor: float
    home_country: str
    campaigns: Table
    ad_groups: Table
    keywords: Table
    search_terms: Table
    countries: Table

    def activity(self, seed: int, day: date) -> float:
        """The account's traffic multiplier for ``day``: 0 on a dark day."""
        rng = rng_for(seed, "day", self.customer.customer_id, day.isoformat())
        if rng.random() < self.dark_rate:
            return 0.0
        weekend = self.weekend_factor if day.weekday() >= 5 else 1.0
        return float(weekend * rng.lognormal(0.0, 0.2))


def _ids(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """``n`` distinct increasing ids starting in [low, high)."""
    start = int(rng.integers(low, high))
    return start + np.cumsum(rng.integers(1, 5_000_000, n)).astype(np.int64)


def _home_country(customer: CustomerConfig) -> str:
    tz = customer.time_zone
    by_zone = {
        "Europe/Berlin": "DE",
        "Europe/London": "GB",
        "Europe/Paris": "FR",
        "Europe/Madrid": "ES",
        "Europe/Rome": "IT",
        "Europe/Amsterdam": "NL",
        "Asia/Tokyo": "JP",
        "Asia/Singapore": "SG",
        "Asia/Kolkata": "IN",
    }
    if tz in by_zone:
        return by_zone[tz]
    if tz.startswith("Australia/"):
        return "AU"
    return {"EUR": "DE", "GBP": "GB", "JPY": "JP", "AUD": "AU", "CAD": "CA"}.get(customer.currency, "US")


def build_universe(seed: int, customer: CustomerConfig) -> Universe:
    """The stable entities of ``customer`` under ``seed``."""
    rng = rng_for(seed, "universe", customer.customer_id)
    sandbox = customer.tags.get("env", "prod") in ("staging", "test", "sandbox", "dev")
    brand = customer.name.split()[0].lower() if customer.name.split() else "brand"
    nouns = THEMES[list(THEMES)[int(rng.integers(len(THEMES)))]]
    money = CURRENCY_FACTOR.get(customer.currency, 1.0) * 1_000_000  # micros per USD
    home = _home_country(customer)

    campaigns = _campaigns(rng, brand, nouns, money, home)
    ad_groups = _ad_groups(rng, campaigns, brand, nouns)
    keywords = _keywords(rng, ad_groups)
    search_terms = _search_terms(rng, keywords)
    countries = _countries(rng, home)
    return Universe(
        customer=customer,
        volume=float(rng.lognormal(np.log(60_000), 0.7)) * (0.05 if sandbox else 1.0),
        dark_rate=0.6 if sandbox else float(rng.uniform(0.01, 0.08)),
        weekend_factor=float(rng.uniform(0.45, 1.15)),
        home_country=home,
        campaigns=campaigns,
        ad_groups=ad_groups,
        keywords=keywords,
        search_terms=search_terms,
        countries=countries,
    )


def _campaigns(rng, brand: str, nouns, money: float, home: str) -> Table:
    n = int(rng.integers(3, 13))
    probs = np.array([CHANNELS[c][0] for c in CHANNEL_NAMES])
    channel_idx = rng.choice(len(CHANNEL_NAMES), size=n, p=probs / probs.sum())
    channel_idx[0] = 0  # every account runs a brand search campaign
    status = rng.choice(["ENABLED", "PAUSED", "REMOVED"], size=n, p=[0.75, 0.2, 0.05])
    status[0] = "ENABLED"
    names, bidding = [], []
    for i, ch in enumerate(channel_idx):
        channel = CHANNEL_NAMES[ch]
        label = channel.replace("_", " ").title()
        noun = nouns[i % len(nouns)].title()
        names.append(f"Brand | Search | {home}" if i == 0 else f"{label} | {noun} | {i:02d}")
        bidding.append(rng.choice(CHANNELS[channel][5]))
    weight = rng.lognormal(0.0, 1.4, n)  # heavy-tailed spend shares
    weight[0] = max(weight[0], 0.3 * weight.max())
    ctr = np.array([CHANNELS[CHANNEL_NAMES[c]][1] for c in channel_idx])
    cpc = np.array([CHANNELS[CHANNEL_NAMES[c]][2] for c in channel_idx])
    cpm = np.array([CHANNELS[CHANNEL_NAMES[c]][3] for c in channel_idx])
    ctr = ctr * rng.lognormal(0.0, 0.3, n)
    ctr[0] = max(ctr[0], 0.12)  # brand terms click well
    return {
        "campaign_id": _ids(rng, n, 10_000_000_000, 20_000_000_000),
        "campaign_name": np.array(names, dtype=object),
        "campaign_status": status.astype(object),
        "campaign_advertising_channel_type": np.array(CHANNEL_NAMES, dtype=object)[channel_idx],
        "campaign_bidding_strategy_type": np.array(bidding, dtype=object),
        "_channel": channel_idx,
        "_active": status == "ENABLED",
        "_weight": weight / weight.sum(),
        "_ctr": ctr,
        "_cpc": cpc * rng.lognormal(0.0, 0.35, n) * money,
        "_cpm": cpm * rng.lognormal(0.0, 0.3, n) * money,
        "_cvr": rng.uniform(0.01, 0.12, n),
        "_aov": rng.lognormal(np.log(80.0), 0.5, n) * money / 1_000_000,
    }


def _ad_groups(rng, campaigns: Table, brand: str, nouns) -> Table:
    rows: dict[str, list] = {k: [] for k in ("name", "status", "type", "campaign", "share")}
    for c, channel_idx in enumerate(campaigns["_channel"]):
        types = CHANNELS[CHANNEL_NAMES[channel_idx]][4]
        if not types:  # Performance Max runs asset groups, not ad groups
            continue
        n = int(rng.integers(1, 9))
        share = rng.lognormal(0.0, 1.0, n)
        status = rng.choice(["ENABLED", "PAUSED", "REMOVED"], size=n, p=[0.85, 0.12, 0.03])
        for j in range(n):
            noun = brand if c == 0 else nouns[int(rng.integers(len(nouns)))]
            rows["name"].append(f"{noun.title()} - {j + 1:02d}")
            rows["status"].append("ENABLED" if c == 0 and j == 0 else status[j])
            rows["type"].append(types[0] if (c == 0 or rng.random() < 0.8) else rng.choice(types))
            rows["campaign"].append(c)
            rows["share"].append(share[j] / share.sum())
    campaign = np.array(rows["campaign"], dtype=np.int64)
    status = np.array(rows["status"], dtype=object)
    return {
        "ad_group_id": _ids(rng, len(campaign), 100_000_000_000, 200_000_000_000),
        "ad_group_name": np.array(rows["name"], dtype=object),
        "ad_group_status": status,
        "ad_group_type": np.array(rows["type"], dtype=object),
        "_campaign": campaign,
        "_share": np.array(rows["share"]),
        "_active": (status == "ENABLED") & campaigns["_active"][campaign],
        "_noun": np.array([n.split(" - ")[0].lower() for n in rows["name"]], dtype=object),
    }


def _keywords(rng, ad_groups: Table) -> Table:
    text, match, ad_group = [], [], []
    combos = len(KEYWORD_MODIFIERS) * len(MATCH_TYPES)
    for g, ag_type in enumerate(ad_groups["ad_group_type"]):
        if ag_type != "SEARCH_STANDARD":
            continue
        n = int(rng.integers(3, 16))
        for pick in rng.choice(combos, size=n, replace=False):
            modifier = KEYWORD_MODIFIERS[pick // len(MATCH_TYPES)]
            text.append(f"{modifier} {ad_groups['_noun'][g]}".strip())
            match.append(MATCH_TYPES[pick % len(MATCH_TYPES)])
            ad_group.append(g)
    n = len(text)
    ad_group_idx = np.array(ad_group, dtype=np.int64)
    status = rng.choice(["ENABLED", "PAUSED", "REMOVED"], size=n, p=[0.85, 0.1, 0.05])
    status[:1] = "ENABLED"  # the brand ad group always has a live keyword
    quality = np.ma.masked_array(
        np.clip(np.round(rng.normal(6.5, 1.8, n)), 1, 10).astype(np.int64),
        mask=rng.random(n) < 0.15,
    )
    share = rng.lognormal(0.0, 1.5, n)
    totals = np.bincount(ad_group_idx, weights=share, minlength=len(ad_groups["_share"]))
    return {
        "ad_group_criterion_criterion_id": _ids(rng, n, 300_000_000, 900_000_000),
        "ad_group_criterion_keyword_text": np.array(text, dtype=object),
        "ad_group_criterion_keyword_match_type": np.array(match, dtype=object),
        "ad_group_criterion_status": status.astype(object),
        "ad_group_criterion_quality_info_quality_score": quality,
        "_ad_group": ad_group_idx,
        "_share": share / totals[ad_group_idx] if n else share,
        "_active": (status == "ENABLED") & ad_groups["_active"][ad_group_idx],
    }


def _search_terms(rng, keywords: Table) -> Table:
    terms, status, keyword, share = [], [], [], []
    for k, text in enumerate(keywords["ad_group_criterion_keyword_text"]):
        n = int(rng.integers(1, 6))
        weights = rng.lognormal(0.0, 1.2, n)
        for j, pick in enumerate(rng.choice(len(TERM_SUFFIXES), size=n, replace=False)):
            term = f"{text} {TERM_SUFFIXES[pick]}".strip()
            terms.append(term)
            if term == text:
                status.append("ADDED")
            else:
                status.append(rng.choice(["NONE", "EXCLUDED", "ADDED", "ADDED_EXCLUDED"], p=[0.85, 0.07, 0.05, 0.03]))
            keyword.append(k)
            share.append(weights[j] / weights.sum())
    return {
        "search_term_view_search_term": np.array(terms, dtype=object),
        "search_term_view_status": np.array(status, dtype=object),
        "_keyword": np.array(keyword, dtype=np.int64),
        "_share": np.array(share),
    }


def _countries(rng, home: str) -> Table:
    others = [c for c in COUNTRIES if c != home]
    extra = rng.choice(others, size=int(rng.integers(2, 8)), replace=False)
    codes = [home, *extra]
    share = rng.lognormal(0.0, 1.0, len(codes))
    share[0] = share.sum() * 2  # the home market dominates
    return {
        "geographic_view_country_criterion_id": np.array([COUNTRIES[c] for c in codes]),
        "_code": np.array(codes, dtype=object),
        "_share": share / share.sum(),
    }
