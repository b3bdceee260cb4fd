"""``gridapi.v1.StateFacetService`` (the tag-facet contract): the CLI's ``facets`` commands over HTTP.

TriggerFacetBackfill only queues the job (``PENDING``); the Dagster sensor launches it, as for
the CLI without ``--wait``. An HTTP request never runs a backfill.
"""

from __future__ import annotations

from typing import Any

from gridcat_pipelines.api.calls import Call
from gridcat_pipelines.api.route import Route, rpc_route
from gridcat_pipelines.api.services import ApiServices

COMPLIANCE_FIELDS = (
    "facet_id",
    "key_name",
    "column_name",
    "status",
    "rows_total",
    "rows_with_tag",
    "null_with_tag",
    "tag_absent",
    "drift",
)


def promote(services: ApiServices, call: Call) -> dict[str, Any]:
    """The facet and its initial backfill ``job_id`` (null when no row needed one)."""
    m = call.message
    return services.facets.promote(m["key_name"], m.get("column_name"), m.get("create_index", True))


def disable(services: ApiServices, call: Call) -> dict[str, Any]:
    """The facet with ``disabled_at`` and ``outstanding_backfill_jobs``."""
    return services.facets.disable(call.message["facet_id"], call.message["reason"])


def list_facets(services: ApiServices, call: Call) -> dict[str, Any]:
    """``{"facets": [...]}``, DISABLED included."""
    return services.facets.list_facets()


def trigger_backfill(services: ApiServices, call: Call) -> dict[str, Any]:
    """``{"job_id", "status": "PENDING"}``."""
    m = call.message
    return services.facets.trigger_backfill(m["facet_id"], m.get("batch_size"), m.get("mode", "FULL"))


def backfill_status(services: ApiServices, call: Call) -> dict[str, Any]:
    """The job, ``status`` at the top level, counts and ETA."""
    return services.facets.backfill_status(call.message["job_id"])


def compliance(services: ApiServices, call: Call) -> dict[str, Any]:
    """``{"facets": [{facet_id, key_name, rows_total, rows_with_tag, null_with_tag, tag_absent, drift}]}``."""
    return {"facets": [{k: f[k] for k in COMPLIANCE_FIELDS} for f in services.facets.compliance()["facets"]]}


def _rpc(method: str, handler, summary: str, *, mutation: bool = False) -> Route:
    return rpc_route("StateFacetService", method, handler, summary, mutation=mutation)


ROUTES = [
    _rpc("PromoteFacet", promote, "Promote a tag key to an indexed projection column", mutation=True),
    _rpc("DisableFacet", disable, "Stop projecting a facet and refuse filters on it (column kept)", mutation=True),
    _rpc("ListFacets", list_facets, "The facet status board"),
    _rpc("TriggerFacetBackfill", trigger_backfill, "Queue a backfill job (PENDING)", mutation=True),
    _rpc("FacetBackfillStatus", backfill_status, "Progress of a backfill job"),
    _rpc("ListFacetCompliance", compliance, "Per facet: rows with the tag, not yet projected, tag absent, drift"),
]
