"""Catalog entities built from the feed config: what gridcat's warehouse holds, described.

Entity ids: the CATALOG ``gridcat`` (the deployment) → the SCHEMA ``google_ads`` → one TABLE
``google_ads.<query_name>`` per feed's warehouse table → one ATTRIBUTE
``google_ads.<query_name>.<column>`` per column (the feed's Arrow columns plus the warehouse's
``logical_date`` partition and ``run_id``); business CONCEPTs ``concept.<name>`` (spend,
clicks, campaign ...) under the catalog, linked both ways (attribute ``descriptive.concepts``,
concept ``concept.attributes``).

Relations come from shared id columns: a feed whose GAQL resource is ``X`` and whose primary
key holds ``X_id`` owns that id (``campaign`` owns ``campaign_id``; ``account``, resource
``customer``, owns ``customer_id``); every other feed carrying the id relates to its owner
(``ad_group → campaign``, ``keyword_view → ad_group`` ...), joined on ``customer_id`` and the id.

Entities built here have ``origin = "sync"``; a re-sync rewrites only what changed and deletes
synced entities the config no longer yields (entities from elsewhere are left alone).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gridcat_pipelines.facet_types.entities import CatalogEntities, WriteReport
from gridcat_pipelines.facet_types.model import DEFAULT_SCOPE, CatalogEntity, TargetType
from gridcat_pipelines.feeds.models import ColumnSpec, FeedConfig, PipelineConfig

ORIGIN_SYNC = "sync"
CATALOG_ID = "gridcat"
SCHEMA_NAME = "google_ads"
PARTITION_COLUMNS = ("customer_id", "logical_date")

# column name -> business concept key
COLUMN_CONCEPTS = {
    "metrics_cost_micros": "spend",
    "metrics_clicks": "clicks",
    "metrics_impressions": "impressions",
    "metrics_conversions": "conversions",
    "metrics_conversions_value": "conversion-value",
    "campaign_id": "campaign",
    "campaign_name": "campaign",
    "ad_group_id": "ad-group",
    "ad_group_name": "ad-group",
    "customer_id": "customer",
    "customer_descriptive_name": "customer",
    "ad_group_criterion_keyword_text": "keyword",
    "segments_keyword_info_text": "keyword",
    "click_view_keyword_info_text": "keyword",
    "search_term_view_search_term": "search-term",
    "customer_currency_code": "currency",
    "segments_device": "device",
    "segments_date": "report-date",
}

CONCEPTS: dict[str, dict[str, str]] = {
    "spend": {"name": "Spend", "definition": "Money spent on ads.", "unit": "micros of the account currency"},
    "clicks": {"name": "Clicks", "definition": "Clicks on ads.", "unit": "count"},
    "impressions": {"name": "Impressions", "definition": "Times an ad was shown.", "unit": "count"},
    "conversions": {
        "name": "Conversions",
        "definition": "Conversion actions attributed to ad interactions.",
        "unit": "count (fractional)",
    },
    "conversion-value": {"name": "Conversion Value", "definition": "Value of conversions.", "unit": "account currency"},
    "campaign": {"name": "Campaign", "definition": "A Google Ads campaign."},
    "ad-group": {"name": "Ad Group", "definition": "A group of ads and keywords within a campaign."},
    "customer": {"name": "Customer", "definition": "A Google Ads customer account."},
    "keyword": {"name": "Keyword", "definition": "A search keyword an advertiser bids on."},
    "search-term": {"name": "Search Term", "definition": "What a user searched for when an ad showed."},
    "currency": {"name": "Currency", "definition": "ISO 4217 currency of an account."},
    "device": {"name": "Device", "definition": "Device class an ad was served on."},
    "report-date": {"name": "Report Date", "definition": "The day a metric was recorded, in the account time zone."},
}

_WAREHOUSE_COLUMNS = (
    ColumnSpec("logical_date", "date32", False, "Logical date of the partition (hive partition column)."),
    ColumnSpec("run_id", "string", False, "The raw run (UUIDv7) this row was loaded from."),
)


def facet(type_key: str, content: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{scope: content}`` for the default scope, with its ``_type`` marker."""
    return {DEFAULT_SCOPE: {"_type": type_key, **content}}


def display_name(name: str) -> str:
    """A readable name for a column or table: ``metrics_cost_micros`` -> ``Cost Micros``."""
    words = name.split("_")
    if len(words) > 1 and words[0] in ("metrics", "segments"):
        words = words[1:]
    return " ".join(w.capitalize() for w in words)


def table_id(query_name: str) -> str:
    """The TABLE entity id of a feed's warehouse table."""
    return f"{SCHEMA_NAME}.{query_name}"


def concept_id(key: str) -> str:
    """The CONCEPT entity id of a business concept."""
    return f"concept.{key}"


def id_owners(config: PipelineConfig) -> dict[str, str]:
    """``{id column: feed that owns it}`` from the feeds' resources and primary keys."""
    owners: dict[str, str] = {}
    for feed in config.feeds.values():
        column = f"{feed.resource}_id"
        if column in feed.primary_key and column not in owners:
            owners[column] = feed.name
    return owners


def relations_of(feed: FeedConfig, owners: dict[str, str]) -> list[dict[str, Any]]:
    """The relations of ``feed``'s table to the tables owning the ids it carries."""
    names = {c.name for c in feed.columns}
    relations = []
    for column, owner in sorted(owners.items()):
        if owner == feed.name or column not in names:
            continue
        keys = ["customer_id", column] if column != "customer_id" else ["customer_id"]
        relations.append(
            {
                "name": f"{feed.name}_to_{owner}",
                "target": table_id(owner),
                "cardinality": "MANY_TO_ONE",
                "joinColumns": [{"source": k, "target": k} for k in keys],
            }
        )
    return relations


def _attribute(feed: FeedConfig, col: ColumnSpec, ordinal: int, concepts: dict[str, list[str]]) -> CatalogEntity:
    entity_id = f"{table_id(feed.name)}.{col.name}"
    structural: dict[str, Any] = {
        "physicalName": col.name,
        "arrowType": col.type,
        "nullable": col.nullable,
        "isPrimaryKey": col.name in feed.primary_key,
        "ordinal": ordinal,
    }
    if col.name not in {c.name for c in _WAREHOUSE_COLUMNS}:
        structural["sourceField"] = col.field
    descriptive: dict[str, Any] = {"displayName": display_name(col.name), "description": col.description}
    facets = {"structural": facet("structural", structural)}
    concept = COLUMN_CONCEPTS.get(col.name)
    if concept:
        descriptive["concepts"] = [concept_id(concept)]
        concepts.setdefault(concept, []).append(entity_id)
    facets["descriptive"] = facet("descriptive", descriptive)
    prop = (feed.row_schema.get("properties") or {}).get(col.name) or {}
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        facets["value-mapping"] = facet(
            "value-mapping", {"source": "row_schema enum", "values": [{"value": v} for v in prop["enum"]]}
        )
    return CatalogEntity(
        id=entity_id,
        type=TargetType.ATTRIBUTE,
        name=col.name,
        parent_id=table_id(feed.name),
        schema_name=SCHEMA_NAME,
        table_name=feed.name,
        attribute_name=col.name,
        facets=facets,
        origin=ORIGIN_SYNC,
    )


def build_entities(config: PipelineConfig, *, catalog_id: str = CATALOG_ID) -> list[CatalogEntity]:
    """Every entity the feed config describes, ordered catalog, schema, tables, attributes, concepts."""
    entities = [
        CatalogEntity(id=catalog_id, type=TargetType.CATALOG, name=catalog_id, origin=ORIGIN_SYNC),
        CatalogEntity(
            id=SCHEMA_NAME,
            type=TargetType.SCHEMA,
            name=SCHEMA_NAME,
            parent_id=catalog_id,
            schema_name=SCHEMA_NAME,
            origin=ORIGIN_SYNC,
            facets={
                "descriptive": facet(
                    "descriptive",
                    {
                        "displayName": "Google Ads",
                        "description": "Daily Google Ads reports, one warehouse table per GAQL feed.",
                    },
                )
            },
        ),
    ]
    owners = id_owners(config)
    concepts: dict[str, list[str]] = {}
    for feed in config.feeds.values():
        entities.append(
            CatalogEntity(
                id=table_id(feed.name),
                type=TargetType.TABLE,
                name=feed.name,
                parent_id=SCHEMA_NAME,
                schema_name=SCHEMA_NAME,
                table_name=feed.name,
                origin=ORIGIN_SYNC,
                facets={
                    "structural": facet(
                        "structural",
                        {
                            "physicalName": feed.name,
                            "tableType": "TABLE",
                            "location": f"warehouse/{feed.name}",
                            "primaryKey": list(feed.primary_key),
                            "partitionColumns": list(PARTITION_COLUMNS),
                            "schemaVersion": feed.schema_version,
                            "sourceResource": feed.resource,
                        },
                    ),
                    "descriptive": facet(
                        "descriptive", {"displayName": display_name(feed.name), "description": feed.description}
                    ),
                    "relation": facet("relation", {"relations": relations_of(feed, owners)}),
                },
            )
        )
        for ordinal, col in enumerate((*feed.columns, *_WAREHOUSE_COLUMNS)):
            entities.append(_attribute(feed, col, ordinal, concepts))
    for key in sorted(concepts):
        entities.append(
            CatalogEntity(
                id=concept_id(key),
                type=TargetType.CONCEPT,
                name=key,
                parent_id=catalog_id,
                origin=ORIGIN_SYNC,
                facets={"concept": facet("concept", {**CONCEPTS[key], "attributes": sorted(concepts[key])})},
            )
        )
    return entities


def sync_entities(service: CatalogEntities, config: PipelineConfig) -> WriteReport:
    """Make the stored synced entities equal to what ``config`` yields (one transaction).

    Facets of types disabled in this deployment (e.g. ``value-mapping``) are left out.
    """
    known = {d.type_key: d.enabled for d in service.catalog.all()}
    built = [
        replace(e, facets={k: v for k, v in e.facets.items() if known.get(k, True)}) for e in build_entities(config)
    ]
    wanted = {e.id for e in built}
    stale = sorted(e.id for e in service.repository.get_all() if e.origin == ORIGIN_SYNC and e.id not in wanted)
    return service.write_all(built, delete_ids=stale)
