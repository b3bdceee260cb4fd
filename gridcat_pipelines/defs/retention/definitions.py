"""The retention domain's definitions: the ``raw_retention`` and ``warehouse_retention`` jobs."""

import dagster as dg

from gridcat_pipelines.defs.retention.jobs import raw_retention_job, warehouse_retention_job


def build_retention_defs() -> dg.Definitions:
    """The raw and warehouse retention jobs (resources come from ``build_defs``)."""
    return dg.Definitions(jobs=[raw_retention_job, warehouse_retention_job])


@dg.definitions
def retention_defs() -> dg.Definitions:
    """The retention domain (``dg`` loads this)."""
    return build_retention_defs()
