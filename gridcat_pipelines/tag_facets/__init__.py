"""Tag facets (the tag-facet contract, ``StateFacetService``): tag keys on states promoted to projection columns.

Modules: ``identifiers`` (validated, quoted names), ``tables`` (the backfill job table),
``ddl`` (per-dialect DDL), ``backfill`` (checkpointed batches), ``service`` (``FacetService``),
``views`` (JSON of registry and job rows). This package manages the facets; the state store
reads them on its own (``gridcat_pipelines.state``: the registry table in ``tables``, the
write path's ``projector``, ListStates' ``facet_filters``) and never imports this package.
It does not import Dagster; import ``FacetService`` from ``gridcat_pipelines.tag_facets.service``.
"""
