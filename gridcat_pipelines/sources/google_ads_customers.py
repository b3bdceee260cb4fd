"""The client accounts under a Google Ads manager account (``customer_client``), and merging
them into the customer config (``config/customers.yaml``) without losing hand-set tags.

``customer_client`` queried on a manager lists every account below it, at every level,
the manager itself included (level 0). :func:`discover_customers` keeps the client accounts
you can pull: it skips managers, cancelled or closed accounts and hidden ones unless asked.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from gridcat_pipelines.feeds.loader import load_customers
from gridcat_pipelines.sources.google_ads import DEFAULT_API_VERSION, GoogleAdsApiSource, SourceConfigError
from gridcat_pipelines.state.keys import normalize_customer_id

DISCOVERY_QUERY = (
    "SELECT customer_client.client_customer, customer_client.id, customer_client.descriptive_name, "
    "customer_client.time_zone, customer_client.currency_code, customer_client.status, "
    "customer_client.manager, customer_client.hidden, customer_client.level "
    "FROM customer_client"
)
CANCELLED_STATUSES = frozenset({"CANCELED", "CLOSED"})
CUSTOMER_KEYS = ("customer_id", "name", "time_zone", "currency", "status", "manager")
DEFAULT_HEADER = """\
# Google Ads customer accounts gridcat pulls (every feed in google_apis.yaml, every day).
#
#   customer_id  10 digits; "123-456-7890" is accepted and normalised to "1234567890"
#   name         display name
#   time_zone    the account's IANA time zone (reports are per account-local day)
#   currency     the account currency, ISO 4217 (cost_micros are in this currency)
#   tags         string -> string; copied onto every partition state of the customer
#
# Written by `gridcat customers discover --write`; tags set by hand are kept when it runs again.

"""


def discover_customers(
    source_or_client: Any,
    login_customer_id: str | None = None,
    *,
    include_managers: bool = False,
    include_hidden: bool = False,
    include_cancelled: bool = False,
) -> list[dict[str, Any]]:
    """The accounts under the manager ``login_customer_id``, sorted by id.

    ``source_or_client`` is a :class:`GoogleAdsApiSource` or a ``GoogleAdsClient`` (built
    with ``use_proto_plus: False``). ``login_customer_id`` defaults to the source's. Each
    account is ``{"customer_id", "name", "time_zone", "currency", "status", "manager"}``.
    """
    if isinstance(source_or_client, GoogleAdsApiSource):
        source = source_or_client
    else:
        version = getattr(source_or_client, "version", None) or DEFAULT_API_VERSION
        source = GoogleAdsApiSource(client=source_or_client, version=version)
    manager = login_customer_id or source.login_customer_id or getattr(source_or_client, "login_customer_id", None)
    if not manager:
        raise SourceConfigError(
            "which manager account? pass --login-customer-id or set GOOGLE_ADS_LOGIN_CUSTOMER_ID "
            "(or login_customer_id in the configuration file)"
        )
    manager = normalize_customer_id(manager)
    found: dict[str, dict[str, Any]] = {}
    status_names: dict[int, str] | None = None
    for row in source.search(manager, DISCOVERY_QUERY, label=f"customer_client under {manager}"):
        client = row.customer_client
        if status_names is None:
            enum = client.DESCRIPTOR.fields_by_name["status"].enum_type
            status_names = {v.number: v.name for v in enum.values}
        status = status_names.get(client.status, str(client.status))
        if client.manager and not include_managers:
            continue
        if client.hidden and not include_hidden:
            continue
        if status in CANCELLED_STATUSES and not include_cancelled:
            continue
        customer_id = str(client.id) if client.HasField("id") else _id_from_resource(client.client_customer)
        found[customer_id] = {
            "customer_id": customer_id,
            "name": client.descriptive_name,
            "time_zone": client.time_zone,
            "currency": client.currency_code,
            "status": status,
            "manager": bool(client.manager),
        }
    return [found[k] for k in sorted(found)]


def _id_from_resource(name: str) -> str:
    """``customers/1234567890`` -> ``1234567890``."""
    return name.rsplit("/", 1)[-1]


# --------------------------------------------------------------------------- customers.yaml


def merge_customers(existing_text: str | None, discovered: Iterable[dict[str, Any]]) -> tuple[str, dict[str, list]]:
    """The customers file with ``discovered`` merged in, and what changed.

    Accounts already in the file keep their place and their ``tags``; their name, time zone
    and currency are taken from the API (a name the API leaves empty keeps the file's). New
    accounts are appended with empty tags. Accounts in the file that were not discovered stay
    as they are (listed under ``not_discovered``). The comment block above ``customers:`` is
    kept; comments between entries are not.
    """
    header, entries = _parse_existing(existing_text)
    by_id = {entry["customer_id"]: entry for entry in entries}
    summary: dict[str, list] = {"added": [], "updated": [], "unchanged": [], "not_discovered": []}
    seen = set()
    for account in discovered:
        customer_id = normalize_customer_id(account["customer_id"])
        seen.add(customer_id)
        entry = by_id.get(customer_id)
        if entry is None:
            entry = {
                "customer_id": customer_id,
                "name": account.get("name") or f"Customer {customer_id}",
                "time_zone": account["time_zone"],
                "currency": account["currency"],
                "tags": {},
            }
            entries.append(entry)
            by_id[customer_id] = entry
            summary["added"].append(customer_id)
            continue
        before = dict(entry)
        if account.get("name"):
            entry["name"] = account["name"]
        entry["time_zone"] = account["time_zone"]
        entry["currency"] = account["currency"]
        summary["updated" if entry != before else "unchanged"].append(customer_id)
    summary["not_discovered"] = [e["customer_id"] for e in entries if e["customer_id"] not in seen]
    return header + _render(entries), summary


def merge_into_file(path: str | Path, discovered: Iterable[dict[str, Any]]) -> dict[str, list]:
    """Merge ``discovered`` into the customers file at ``path`` (created if missing).

    The result is checked with the customer config loader before it replaces the file
    (atomically); a result that would not load leaves the file untouched (``ConfigError``).
    """
    path = Path(path)
    existing = path.read_text(encoding="utf-8") if path.exists() else None
    text, summary = merge_customers(existing, discovered)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        load_customers(tmp)  # raises ConfigError (naming the problem) if it would not load
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return summary


def _parse_existing(text: str | None) -> tuple[str, list[dict[str, Any]]]:
    if text is None or not text.strip():
        return DEFAULT_HEADER, []
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == "customers:"), None)
    header = "".join(lines[:start]) if start is not None else DEFAULT_HEADER
    doc = yaml.safe_load(text) or {}
    items = (doc.get("customers") or []) if isinstance(doc, dict) else []
    entries = []
    for item in items:
        if not isinstance(item, dict) or "customer_id" not in item:
            continue
        entry = dict(item)
        entry["customer_id"] = normalize_customer_id(entry["customer_id"])
        entries.append(entry)
    return header, entries


_ORDER = ("customer_id", "name", "time_zone", "currency", "tags")


def _render(entries: list[dict[str, Any]]) -> str:
    blocks = []
    for entry in entries:
        keys = [k for k in _ORDER if k in entry] + [k for k in entry if k not in _ORDER]
        lines = []
        for key in keys:
            value = entry[key]
            if key == "customer_id":
                text = json.dumps(str(value))
            elif key == "tags":
                text = _flow_mapping(value or {})
            else:
                text = _scalar(value)
            lines.append(f"{key}: {text}")
        blocks.append("  - " + "\n    ".join(lines) + "\n")
    return "customers:\n" + "\n".join(blocks)


def _scalar(value: Any) -> str:
    """A YAML scalar for a block mapping value (plain when safe, else double-quoted)."""
    out = yaml.safe_dump({"k": value}, allow_unicode=True, sort_keys=False, width=1 << 30, default_flow_style=False)
    text = out[len("k: ") :].rstrip("\n")
    return text if "\n" not in text else json.dumps(value, ensure_ascii=False)


def _flow_mapping(tags: dict[str, Any]) -> str:
    if not tags:
        return "{}"
    out = yaml.safe_dump(dict(tags), allow_unicode=True, sort_keys=False, width=1 << 30, default_flow_style=True)
    return out.strip()
