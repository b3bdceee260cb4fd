"""Dagster definitions for raw-run retention."""
