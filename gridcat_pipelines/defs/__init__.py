"""The Dagster layer: a thin shell over the domain modules, one folder per domain."""
