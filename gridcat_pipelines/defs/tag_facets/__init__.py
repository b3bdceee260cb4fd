"""Dagster definitions for tag facets: promote, disable and backfill jobs and the backfill sensor."""
