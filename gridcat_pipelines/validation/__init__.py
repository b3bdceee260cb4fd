"""Vectorised validation of raw runs: schema, metadata, JSON Schema rows, business rules."""
