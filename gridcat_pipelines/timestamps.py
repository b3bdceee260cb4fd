"""How gridcat writes timestamps in JSON: ISO 8601 in UTC with a ``Z`` suffix."""

from __future__ import annotations

from datetime import datetime


def iso_utc(ts: datetime | None) -> str | None:
    """A UTC timestamp as ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` (None stays None)."""
    return None if ts is None else ts.isoformat().replace("+00:00", "Z")
