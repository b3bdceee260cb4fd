"""What a handler receives: the checked message, path and query parameters, the caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gridcat_pipelines.api.auth import Principal


@dataclass(frozen=True)
class Call:
    """One request as handlers see it."""

    message: dict[str, Any]
    principal: Principal
    path_params: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
