"""JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of every API message.

Request schemas are self-contained: the API validates each request body against its schema
before a service sees it (unknown fields, wrong types, out-of-range integers are
``invalid_argument``). Response schemas are the OpenAPI components the document publishes;
the services' own JSON views (``PartitionState.to_json``, ``facet_json``, ``job_json``,
``FacetTypeDescriptor.to_json`` …) produce them and the tests check the two agree.
"""

from __future__ import annotations

from typing import Any

from gridcat_pipelines.facet_types import model as catalog_model
from gridcat_pipelines.run_ids import _UUID7_RE
from gridcat_pipelines.state import keys
from gridcat_pipelines.tag_facets.identifiers import COLUMN_RE

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1


def ref(name: str) -> dict[str, Any]:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or null."""
    if "type" in schema and isinstance(schema["type"], str):
        return {**schema, "type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def message(properties: dict[str, Any], required: tuple[str, ...] = (), *, closed: bool = True) -> dict[str, Any]:
    """An object schema; ``closed`` rejects unknown fields (the API's rule for requests)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


STRING = {"type": "string"}
TEXT = {"type": "string", "maxLength": 4096}
TIMESTAMP = nullable({"type": "string", "description": "ISO 8601 timestamp (UTC)"})
COUNT = {"type": "integer", "minimum": 0, "maximum": INT64_MAX}
TAGS = {"type": "object", "additionalProperties": {"type": "string"}, "description": "tag key → value"}

# ----------------------------------------------------------------------------- request fields

# Patterns are the domain's own (the services check the same rules and more, e.g. real dates).
NAME = {"type": "string", "pattern": keys._NAME_RE.pattern}
SOURCE = {**NAME, "default": "google_ads", "description": "source system (default google_ads)"}
CUSTOMER_ID = {
    "type": "string",
    "pattern": keys._CUSTOMER_RE.pattern,
    "maxLength": 32,
    "description": "digits; 123-456-7890 is accepted and normalised",
    "examples": ["1234567890"],
}
QUERY_NAME = {**NAME, "description": "GAQL query (feed) name", "examples": ["campaign"]}
LOGICAL_DATE = {
    "type": "string",
    "format": "date",
    "pattern": keys._DATE_RE.pattern,
    "description": "YYYY-MM-DD",
    "examples": ["2026-11-01"],
}
RUN_ID = {
    "type": "string",
    "pattern": _UUID7_RE.pattern,
    "description": "the run's UUIDv7 (RFC 9562)",
    "examples": ["019ac0f2-3b7e-7c21-8a5e-3c1d2e4f5a6b"],
}
UUID = {"type": "string", "format": "uuid"}
FACET_ID = {**UUID, "description": "a facet id (UUID)"}
JOB_ID = {**UUID, "description": "a backfill job id (UUID)"}
TAG_KEY = {"type": "string", "pattern": keys._TAG_KEY_RE.pattern}
TYPE_KEY = {"type": "string", "pattern": catalog_model._TYPE_KEY_RE.pattern, "maxLength": 100}
ENTITY_ID = {"type": "string", "pattern": catalog_model._ENTITY_ID_RE.pattern}

KEY_FIELDS = {
    "source": SOURCE,
    "customer_id": CUSTOMER_ID,
    "query_name": QUERY_NAME,
    "logical_date": LOGICAL_DATE,
}
KEY_REQUIRED = ("customer_id", "query_name", "logical_date")

FILTER = message(
    {
        "key": {**TAG_KEY, "description": "a promoted tag key"},
        "op": {"type": "string", "enum": ["EQ"], "default": "EQ"},
        "value": message({"stringValue": {"type": "string"}}, ("stringValue",)),
    },
    ("key", "value"),
)

REQUESTS: dict[str, dict[str, Any]] = {
    "PromoteFacetRequest": message(
        {
            "key_name": {**TAG_KEY, "description": "the tag key to promote"},
            "column_name": {
                "type": "string",
                "pattern": COLUMN_RE.pattern,
                "description": "default: the key, lower-cased",
            },
            "create_index": {"type": "boolean", "default": True},
        },
        ("key_name",),
    ),
    "DisableFacetRequest": message({"facet_id": FACET_ID, "reason": TEXT}, ("facet_id", "reason")),
    "ListFacetsRequest": message({}),
    "TriggerFacetBackfillRequest": message(
        {
            "facet_id": FACET_ID,
            "batch_size": {
                "type": "integer",
                "minimum": 0,
                "maximum": INT32_MAX,
                "description": "1..100000; 0 = 10000",
            },
            "mode": {"type": "string", "enum": ["FULL", "MISSING_ONLY"], "default": "FULL"},
        },
        ("facet_id",),
    ),
    "FacetBackfillStatusRequest": message({"job_id": JOB_ID}, ("job_id",)),
    "ListFacetComplianceRequest": message({}),
    "GetStateRequest": message(KEY_FIELDS, KEY_REQUIRED),
    "GetStateHistoryRequest": message(KEY_FIELDS, KEY_REQUIRED),
    "ListStatesRequest": message(
        {
            "filters": {"type": "array", "items": FILTER, "maxItems": 32},
            "page_size": {
                "type": "integer",
                "minimum": -INT32_MAX,
                "maximum": INT32_MAX,
                "description": "default 20, max 1000",
            },
            "page_token": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "success", "failed"]},
            "source": NAME,
            "customer_id": CUSTOMER_ID,
            "query_name": NAME,
            "from_date": {**LOGICAL_DATE, "description": "first logical date, YYYY-MM-DD"},
            "to_date": {**LOGICAL_DATE, "description": "last logical date, YYYY-MM-DD"},
        }
    ),
    "RecordResultRequest": message(
        {
            **KEY_FIELDS,
            "run_id": RUN_ID,
            "status": {"type": "string", "enum": ["success", "failed"]},
            "record_count": nullable(COUNT),
            "schema_version": nullable(TEXT),
            "error_message": nullable(TEXT),
            "tags": nullable(TAGS),
        },
        (*KEY_REQUIRED, "run_id", "status"),
    ),
    "SetAuthoritativeRequest": message(
        {**KEY_FIELDS, "run_id": RUN_ID, "expected_version": {"type": "integer", "minimum": 0, "maximum": INT64_MAX}},
        (*KEY_REQUIRED, "run_id", "expected_version"),
    ),
    "FacetTypeWrite": message(
        {
            "typeKey": {**TYPE_KEY, "examples": ["data-quality"]},
            "mandatory": {"type": "boolean"},
            "enabled": {"type": "boolean"},
            "displayName": nullable({"type": "string"}),
            "description": nullable({"type": "string"}),
            "applicableTo": nullable({"type": "array", "items": {"type": "string"}}),
            "version": nullable({"type": "string"}),
            "contentSchema": nullable({"type": ["object", "boolean"]}),
        },
        ("typeKey",),
    ),
    "EntityWrite": message(
        {
            "id": ENTITY_ID,
            "type": {"type": "string", "enum": ["CATALOG", "SCHEMA", "TABLE", "ATTRIBUTE", "CONCEPT"]},
            "name": {"type": "string"},
            "parentId": nullable({"type": "string"}),
            "schemaName": nullable({"type": "string"}),
            "tableName": nullable({"type": "string"}),
            "attributeName": nullable({"type": "string"}),
            "facets": {
                "type": "object",
                "additionalProperties": {"type": "object", "additionalProperties": {"type": "object"}},
            },
        },
        ("id", "type"),
    ),
}

# PUT names the type in its path: FacetTypeWrite with no field required.
REQUESTS["FacetTypeUpdate"] = {k: v for k, v in REQUESTS["FacetTypeWrite"].items() if k != "required"}

# ---------------------------------------------------------------------------- response schemas

_STATE = message(
    {
        "source": STRING,
        "customer_id": STRING,
        "query_name": STRING,
        "logical_date": {"type": "string", "description": "YYYY-MM-DD"},
        "status": {"type": "string", "enum": ["pending", "success", "failed"]},
        "current_run_id": nullable(STRING),
        "schema_version": nullable(STRING),
        "record_count": nullable({"type": "integer"}),
        "updated_at": TIMESTAMP,
        "error_message": nullable(STRING),
        "attempt_count": {"type": "integer"},
        "version": {"type": "integer"},
        "tags": TAGS,
    },
    ("source", "customer_id", "query_name", "logical_date", "status", "current_run_id", "version", "tags"),
    closed=False,
)

_HISTORY_ENTRY = message(
    {
        "id": {"type": "integer"},
        "source": STRING,
        "customer_id": STRING,
        "query_name": STRING,
        "logical_date": STRING,
        "run_id": STRING,
        "outcome": {"type": "string", "enum": ["applied", "superseded", "replayed", "repointed"]},
        "status": STRING,
        "schema_version": nullable(STRING),
        "record_count": nullable({"type": "integer"}),
        "error_message": nullable(STRING),
        "tags": nullable(TAGS),
        "state_version": {"type": "integer"},
        "change_seq": nullable({"type": "integer"}),
        "recorded_at": TIMESTAMP,
        "idempotency_key": nullable(STRING),
    },
    ("id", "run_id", "outcome", "status", "state_version"),
    closed=False,
)

_FACET = message(
    {
        "facet_id": STRING,
        "key_name": STRING,
        "column_name": STRING,
        "projection_column": STRING,
        "status": {"type": "string", "enum": ["PROMOTING", "BACKFILLING", "ENABLED", "DISABLED", "FAILED"]},
        "create_index": {"type": "boolean"},
        "error": nullable(STRING),
        "reason": nullable(STRING),
        "promotion_started_at": TIMESTAMP,
        "last_refresh_started_at": TIMESTAMP,
        "last_refresh_succeeded_at": TIMESTAMP,
        "disabled_at": TIMESTAMP,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    },
    ("facet_id", "key_name", "column_name", "projection_column", "status"),
    closed=False,
)

_JOB_STATUS = {"type": "string", "enum": ["PENDING", "RUNNING", "SUCCEEDED", "FAILED"]}

_BACKFILL_JOB = message(
    {
        "job_id": STRING,
        "facet_id": STRING,
        "mode": STRING,
        "batch_size": {"type": "integer"},
        "status": _JOB_STATUS,
        "rows_total": nullable({"type": "integer"}),
        "rows_processed": {"type": "integer"},
        "rows_updated": {"type": "integer"},
        "failures": {"type": "integer"},
        "batches": {"type": "integer"},
        "error": nullable(STRING),
        "created_at": TIMESTAMP,
        "started_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "finished_at": TIMESTAMP,
        "eta_seconds": nullable({"type": "number"}),
    },
    ("job_id", "facet_id", "status", "rows_processed", "failures"),
    closed=False,
)

_COMPLIANCE = message(
    {
        "facet_id": STRING,
        "key_name": STRING,
        "column_name": STRING,
        "status": STRING,
        "rows_total": {"type": "integer"},
        "rows_with_tag": {"type": "integer"},
        "null_with_tag": {"type": "integer"},
        "tag_absent": {"type": "integer"},
        "drift": {"type": "integer"},
    },
    ("facet_id", "key_name", "rows_total", "rows_with_tag", "null_with_tag", "tag_absent", "drift"),
    closed=False,
)

# The facet-type catalog spec's audit fields, on descriptors and entities alike.
_AUDIT = {
    "createdAt": TIMESTAMP,
    "updatedAt": TIMESTAMP,
    "createdBy": nullable(STRING),
    "updatedBy": nullable(STRING),
    "revision": {"type": "integer"},
}

_FACET_TYPE = message(
    {
        "typeKey": STRING,
        "mandatory": {"type": "boolean"},
        "enabled": {"type": "boolean"},
        "displayName": nullable(STRING),
        "description": nullable(STRING),
        "applicableTo": nullable({"type": "array", "items": STRING}),
        "version": nullable(STRING),
        "contentSchema": nullable({"type": ["object", "boolean"]}),
        **_AUDIT,
    },
    ("typeKey", "mandatory", "enabled", "revision"),
    closed=False,
)

_ENTITY = message(
    {
        "id": STRING,
        "type": {"type": "string", "enum": ["CATALOG", "SCHEMA", "TABLE", "ATTRIBUTE", "CONCEPT"]},
        "name": STRING,
        "parentId": STRING,
        "schemaName": STRING,
        "tableName": STRING,
        "attributeName": STRING,
        "facets": {"type": "object"},
        "origin": nullable(STRING),
        **_AUDIT,
    },
    ("id", "type", "name", "facets"),
    closed=False,
)

_ISSUE = message(
    {
        "entityId": nullable(STRING),
        "typeKey": nullable(STRING),
        "scope": nullable(STRING),
        "path": STRING,
        "code": STRING,
        "message": STRING,
    },
    ("code", "message"),
    closed=False,
)

ERROR = message(
    {
        "code": {
            "type": "string",
            "enum": [
                "invalid_argument",
                "failed_precondition",
                "unauthenticated",
                "permission_denied",
                "not_found",
                "already_exists",
                "aborted",
                "resource_exhausted",
                "internal",
                "unimplemented",
                "unavailable",
            ],
        },
        "message": STRING,
        "details": {"type": "array"},
    },
    ("code", "message"),
    closed=False,
)

COMPONENTS: dict[str, dict[str, Any]] = {
    "Error": ERROR,
    "PartitionState": _STATE,
    "HistoryEntry": _HISTORY_ENTRY,
    "Facet": _FACET,
    "BackfillJob": _BACKFILL_JOB,
    "FacetCompliance": _COMPLIANCE,
    "FacetTypeDescriptor": _FACET_TYPE,
    "Entity": _ENTITY,
    "ValidationIssue": _ISSUE,
}

RESPONSES: dict[str, dict[str, Any]] = {
    "PromoteFacetResponse": {"allOf": [ref("Facet"), message({"job_id": nullable(STRING)}, closed=False)]},
    "DisableFacetResponse": {
        "allOf": [
            ref("Facet"),
            message(
                {
                    "outstanding_backfill_jobs": {
                        "type": "array",
                        "items": message({"job_id": STRING, "status": _JOB_STATUS}, ("job_id", "status"), closed=False),
                    }
                },
                ("outstanding_backfill_jobs",),
                closed=False,
            ),
        ]
    },
    "ListFacetsResponse": message({"facets": {"type": "array", "items": ref("Facet")}}, ("facets",), closed=False),
    "TriggerFacetBackfillResponse": message(
        {"job_id": STRING, "status": _JOB_STATUS}, ("job_id", "status"), closed=False
    ),
    "FacetBackfillStatusResponse": ref("BackfillJob"),
    "ListFacetComplianceResponse": message(
        {"facets": {"type": "array", "items": ref("FacetCompliance")}}, ("facets",), closed=False
    ),
    "GetStateResponse": message({"state": ref("PartitionState")}, ("state",), closed=False),
    "ListStatesResponse": message(
        {
            "states": {"type": "array", "items": ref("PartitionState")},
            "next_page_token": STRING,
            "applied_facets": {"type": "array", "items": STRING},
            "non_facet_filters": {"type": "array", "items": STRING},
        },
        ("states", "next_page_token", "applied_facets", "non_facet_filters"),
        closed=False,
    ),
    "GetStateHistoryResponse": message(
        {"history": {"type": "array", "items": ref("HistoryEntry")}}, ("history",), closed=False
    ),
    "RecordResultResponse": message(
        {"outcome": {"type": "string", "enum": ["applied", "superseded", "replayed"]}, "state": ref("PartitionState")},
        ("outcome", "state"),
        closed=False,
    ),
    "SetAuthoritativeResponse": message({"state": ref("PartitionState")}, ("state",), closed=False),
    "FacetTypeList": message(
        {"facetTypes": {"type": "array", "items": ref("FacetTypeDescriptor")}}, ("facetTypes",), closed=False
    ),
    "FacetTypeDeleted": message(
        {"deleted": STRING, "revision": {"type": "integer"}}, ("deleted", "revision"), closed=False
    ),
    "EntityList": message(
        {"entities": {"type": "array", "items": ref("Entity")}, "next_page_token": STRING},
        ("entities", "next_page_token"),
        closed=False,
    ),
    "EntityValidationReport": message(
        {"valid": {"type": "boolean"}, "issues": {"type": "array", "items": ref("ValidationIssue")}},
        ("valid", "issues"),
        closed=False,
    ),
    "Health": message(
        {
            "status": {"type": "string", "enum": ["ok", "unavailable"]},
            "database": STRING,
            "schema_version": {"type": "integer"},
        },
        ("status",),
        closed=False,
    ),
}
