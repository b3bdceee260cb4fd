"""The tag facet domain's definitions."""

from __future__ import annotations

import dagster as dg

from gridcat_pipelines.defs.tag_facets.jobs import disable_facet_job, facet_backfill_job, promote_facet_job
from gridcat_pipelines.defs.tag_facets.sensors import tag_facet_backfill_sensor


def build_tag_facet_defs() -> dg.Definitions:
    """Promote, disable and backfill jobs and the sensor that runs queued backfills."""
    return dg.Definitions(
        jobs=[promote_facet_job, disable_facet_job, facet_backfill_job],
        sensors=[tag_facet_backfill_sensor],
    )


@dg.definitions
def tag_facet_defs() -> dg.Definitions:
    """The tag facet domain (``dg`` loads this)."""
    return build_tag_facet_defs()
