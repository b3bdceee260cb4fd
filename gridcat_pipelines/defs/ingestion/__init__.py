"""Dagster definitions for pulling and validating Google Ads reports."""
