"""The OpenAPI 3.1 document of the API, generated from the routes and their schemas.

The checked-in copy is ``docs/openapi.json``; a test fails when it drifts from the code.
Regenerate it with::

    .venv/bin/python -m gridcat_pipelines.api.openapi --write docs/openapi.json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from gridcat_pipelines.api.schemas import COMPONENTS, REQUESTS, RESPONSES, ref

if TYPE_CHECKING:
    from gridcat_pipelines.api.routes import Router

TITLE = "gridcat API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Partition state, tag facets (the tag-facet contract's gridapi.v1 services as Connect unary JSON RPCs: "
    "POST /gridapi.v1.<Service>/<Method> with the request message as a JSON body) and the facet "
    "type catalog (the facet-type catalog spec's REST paths). Bearer tokens: read tokens call reads, admin tokens "
    "everything. Mutations accept an Idempotency-Key header. Errors use Connect's shape "
    '{"code", "message", "details"} and its HTTP status mapping.'
)
ERROR_RESPONSE = {
    "description": "an error in Connect's shape (code → HTTP status as in the Connect protocol)",
    "content": {"application/json": {"schema": ref("Error")}},
}
IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "replays return the first response (Idempotent-Replayed: true); the same key "
    "with a different request is 422, while the first is in flight 409",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"},
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "responses": {
            str(route.status): _json(ref(route.response), "success"),
            "default": ERROR_RESPONSE,
        },
    }
    params = [
        {"name": name, "in": "path", "required": True, "schema": route.path_param_schemas.get(name, {"type": "string"})}
        for name in route.path_params
    ]
    params += [dict(p) for p in route.query_params]
    if route.mutation:
        params.append(IDEMPOTENCY_HEADER)
    if params:
        op["parameters"] = params
    if route.request is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(route.request)}}}
    return op


def document(router: Router) -> dict[str, Any]:
    """The whole OpenAPI document for ``router``'s routes."""
    paths: dict[str, dict[str, Any]] = {}
    for route in router.routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    paths["/healthz"] = {
        "get": {
            "operationId": "healthz",
            "summary": "Liveness and database check (no token needed)",
            "security": [],
            "tags": ["health"],
            "responses": {
                "200": _json(ref("Health"), "the database answers"),
                "503": ERROR_RESPONSE,
                "default": ERROR_RESPONSE,
            },
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document (no token needed)",
            "security": [],
            "tags": ["health"],
            "responses": {"200": _json({"type": "object"}, "the OpenAPI document")},
        }
    }
    schemas = {**COMPONENTS, **REQUESTS, **RESPONSES}
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "security": [{"bearerAuth": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


def render(router: Router | None = None) -> str:
    """The document as the checked-in file holds it (2-space indent, trailing newline)."""
    from gridcat_pipelines.api.routes import Router

    return json.dumps(document(router or Router()), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the document, or write it with ``--write FILE``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="FILE", help="write here instead of stdout")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        with open(args.write, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
