"""Dagster definitions for the authoritative-run gate: the change-feed sensor and the loaders."""
