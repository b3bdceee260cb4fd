"""gridcat's HTTP API (``gridcat serve``): the tag-facet contract's services as Connect unary JSON RPCs,
the facet-type catalog spec's REST paths, ``/healthz`` and ``/openapi.json``.

A thin layer over the services the CLI uses (``StateStore``, ``FacetService``, the facet type
catalog): requests are checked against the JSON Schemas the OpenAPI document publishes, then
handed to the same functions; no business rule lives here. No Dagster imports.
"""
