"""The ``gridcat`` command line."""
