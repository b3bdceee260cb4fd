"""The catalog domain's Dagster layer: the ``catalog/entities`` asset and its checks."""
