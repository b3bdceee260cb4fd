"""The facet-type catalog spec's REST paths: the facet type catalog and the catalog entities.

Descriptors and entities use the facet-type catalog spec's own (camelCase) field names, exactly as
``gridcat facet-types get --json`` and ``gridcat entities get --json`` print them.
"""

from __future__ import annotations

from typing import Any

from gridcat_pipelines.api import schemas
from gridcat_pipelines.api.calls import Call
from gridcat_pipelines.api.route import Route
from gridcat_pipelines.api.services import ApiServices
from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.facet_types.entities import with_markers
from gridcat_pipelines.facet_types.model import CatalogEntity, FacetTypeDescriptor, check_type_key

TAG = "metadata"


def list_types(services: ApiServices, call: Call) -> dict[str, Any]:
    """``{"facetTypes": [...]}``: every type of this deployment."""
    return {"facetTypes": [d.to_json() for d in services.catalog.all()]}


def get_type(services: ApiServices, call: Call) -> dict[str, Any]:
    """One descriptor, content schema included (404 when unknown)."""
    return services.catalog.require(check_type_key(call.path_params["typeKey"])).to_json()


def create_type(services: ApiServices, call: Call) -> dict[str, Any]:
    """Register a custom type (409 when the key exists); 201 with the stored descriptor."""
    descriptor = FacetTypeDescriptor.from_json(call.message, where="request")
    return services.catalog.register(descriptor, actor=_actor(call)).to_json()


def update_type(services: ApiServices, call: Call) -> dict[str, Any]:
    """Replace a type's definition (the path names it; a ``typeKey`` in the body must agree)."""
    type_key = check_type_key(call.path_params["typeKey"])
    body = dict(call.message)
    if body.setdefault("typeKey", type_key) != type_key:
        raise invalid_argument(f"typeKey {body['typeKey']!r} in the body differs from {type_key!r} in the path")
    descriptor = FacetTypeDescriptor.from_json(body, where="request")
    return services.catalog.update(descriptor, actor=_actor(call)).to_json()


def delete_type(services: ApiServices, call: Call) -> dict[str, Any]:
    """Delete a custom type; platform types cannot be deleted (400 failed_precondition)."""
    deleted = services.catalog.delete(check_type_key(call.path_params["typeKey"]))
    return {"deleted": deleted.type_key, "revision": deleted.revision}


def list_entities(services: ApiServices, call: Call) -> dict[str, Any]:
    """``{"entities": [...], "next_page_token"}``, paged like ListStates."""
    q = call.query
    entities, token = services.entities.list(
        entity_type=q.get("type"),
        parent_id=q.get("parent"),
        page_size=_int_param(q.get("page_size"), "page_size"),
        page_token=q.get("page_token") or None,
    )
    return {"entities": [e.to_json() for e in entities], "next_page_token": token}


def get_entity(services: ApiServices, call: Call) -> dict[str, Any]:
    """One entity with its facets (404 when unknown)."""
    return services.entities.get(call.path_params["entityId"]).to_json()


def validate_entity(services: ApiServices, call: Call) -> dict[str, Any]:
    """The validation report of the entity in the body (``_type`` markers added where missing),
    missing mandatory facets included; nothing is stored."""
    entity = with_markers(CatalogEntity.from_json(call.message, where="request"))
    issues = services.entities.problems(entity, mandatory=True)
    return {"valid": not issues, "issues": [i.to_json() for i in issues]}


def _actor(call: Call) -> str:
    """Who the audit fields name: the API and the caller's (non-secret) principal id."""
    return f"api:{call.principal.id}"


def _int_param(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise invalid_argument(f"{name} {value!r} is not an integer", {"field": name}) from None


def _param(name: str, description: str, *, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


TYPE_KEY = {"typeKey": schemas.TYPE_KEY}
ENTITY_ID = {"entityId": schemas.ENTITY_ID}

ROUTES = [
    Route(
        "GET",
        "/metadata/facet-types",
        "listFacetTypes",
        "Every registered facet type",
        list_types,
        response="FacetTypeList",
        tag=TAG,
    ),
    Route(
        "GET",
        "/metadata/facet-types/{typeKey}",
        "getFacetType",
        "One facet type's descriptor, schema included",
        get_type,
        response="FacetTypeDescriptor",
        tag=TAG,
        path_param_schemas=TYPE_KEY,
    ),
    Route(
        "POST",
        "/metadata/facet-types",
        "createFacetType",
        "Register a custom facet type",
        create_type,
        response="FacetTypeDescriptor",
        request="FacetTypeWrite",
        mutation=True,
        status=201,
        tag=TAG,
    ),
    Route(
        "PUT",
        "/metadata/facet-types/{typeKey}",
        "updateFacetType",
        "Update a facet type (platform fields of mandatory types are fixed)",
        update_type,
        response="FacetTypeDescriptor",
        request="FacetTypeUpdate",
        mutation=True,
        tag=TAG,
        path_param_schemas=TYPE_KEY,
    ),
    Route(
        "DELETE",
        "/metadata/facet-types/{typeKey}",
        "deleteFacetType",
        "Delete a custom facet type",
        delete_type,
        response="FacetTypeDeleted",
        mutation=True,
        tag=TAG,
        path_param_schemas=TYPE_KEY,
    ),
    Route(
        "GET",
        "/metadata/entities",
        "listEntities",
        "Catalog entities, one page at a time",
        list_entities,
        response="EntityList",
        tag=TAG,
        query_params=(
            _param("type", "CATALOG, SCHEMA, TABLE, ATTRIBUTE or CONCEPT"),
            _param("parent", "only children of this entity id"),
            _param(
                "page_size",
                "entities per page (default 50, max 1000)",
                schema={"type": "integer", "minimum": 0, "maximum": 1000},
            ),
            _param("page_token", "next_page_token of the previous page"),
        ),
    ),
    Route(
        "GET",
        "/metadata/entities/{entityId}",
        "getEntity",
        "One entity with its facets",
        get_entity,
        response="Entity",
        tag=TAG,
        path_param_schemas=ENTITY_ID,
    ),
    Route(
        "POST",
        "/metadata/entities/validate",
        "validateEntity",
        "Validate an entity's facets (nothing is stored)",
        validate_entity,
        response="EntityValidationReport",
        request="EntityWrite",
        tag=TAG,
    ),
]
