"""Tag facets (seed 000 ``StateFacetService``): tag keys on states promoted to projection columns.

Modules: ``identifiers`` (validated, quoted names), ``tables`` (registry and job tables),
``projector`` (fills facet columns in the state write path), ``ddl`` (per-dialect DDL),
``filters`` (ListStates facet filters), ``backfill`` (checkpointed batches), ``service``
(``FacetService``). This package does not import Dagster; import ``FacetService`` from
``gridcat_pipelines.tag_facets.service`` (kept out of this ``__init__`` because the state
store imports the projector).
"""
