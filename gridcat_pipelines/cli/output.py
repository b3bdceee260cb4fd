"""How the CLI prints: JSON for scripts (``--json``), short text for people, coded errors."""

from __future__ import annotations

import json
import sys
from typing import Any

from gridcat_pipelines.errors import GridcatError


def print_json(payload: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def print_error(error: GridcatError) -> None:
    """The error as one JSON line, the last line on stderr."""
    sys.stderr.write(json.dumps(error.to_dict(), default=str) + "\n")


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A plain aligned table of ``columns`` for people."""
    if not rows:
        sys.stdout.write("(none)\n")
        return
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip() + "\n")
    for row in cells:
        sys.stdout.write("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() + "\n")


def print_fields(payload: dict[str, Any]) -> None:
    """``name: value`` lines for one object."""
    width = max((len(k) for k in payload), default=0)
    for key, value in payload.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, sort_keys=True)
        sys.stdout.write(f"{key.ljust(width)}  {'' if value is None else value}\n")


def quiet_dagster_warnings() -> None:
    """Hide Dagster's ``BetaWarning`` / ``PreviewWarning`` (about Dagster's own APIs, nothing a
    gridcat user can act on); ``-v`` keeps them."""
    import warnings

    from dagster_shared.utils.warnings import BetaWarning, PreviewWarning

    for category in (BetaWarning, PreviewWarning):
        warnings.filterwarnings("ignore", category=category)
