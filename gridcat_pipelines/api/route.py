"""A route: one HTTP method on one path, its schemas, the role it needs and its handler."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gridcat_pipelines.api.auth import ADMIN, READ

RPC_PREFIX = "/gridapi.v1."
_PARAM_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Route:
    """How one operation is served and documented.

    ``request`` names a schema in ``schemas.REQUESTS`` (a JSON body) or is ``None`` (no body);
    ``response`` names one in ``schemas.RESPONSES``/``COMPONENTS``. ``mutation`` routes need an
    admin token and honour ``Idempotency-Key``; the others are reads.
    """

    method: str
    path: str
    operation_id: str
    summary: str
    handler: Callable[..., Any]
    response: str
    request: str | None = None
    mutation: bool = False
    status: int = 200
    tag: str = "StateService"
    query_params: tuple[dict[str, Any], ...] = ()
    errors: tuple[int, ...] = (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
    path_param_schemas: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def role(self) -> str:
        """``admin`` for mutations, ``read`` otherwise."""
        return ADMIN if self.mutation else READ

    @property
    def is_rpc(self) -> bool:
        """A Connect RPC (``POST /gridapi.v1.<Service>/<Method>``)."""
        return self.path.startswith(RPC_PREFIX)

    @property
    def path_params(self) -> list[str]:
        """The ``{name}`` segments of the path."""
        return _PARAM_RE.findall(self.path)

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters when ``path`` is this route's path, else ``None``."""
        if not self.path_params:
            return {} if path == self.path else None
        want, got = self.path.split("/"), path.split("/")
        if len(want) != len(got):
            return None
        params: dict[str, str] = {}
        for w, g in zip(want, got):
            if w.startswith("{") and w.endswith("}"):
                if not g:
                    return None
                params[w[1:-1]] = g
            elif w != g:
                return None
        return params


def rpc_route(service: str, method: str, handler: Callable[..., Any], summary: str, *, mutation: bool = False) -> Route:
    """The Connect unary route ``POST /gridapi.v1.<service>/<method>`` with its
    ``<method>Request`` / ``<method>Response`` schemas."""
    return Route(
        method="POST",
        path=f"{RPC_PREFIX}{service}/{method}",
        operation_id=f"{service}_{method}",
        summary=summary,
        handler=handler,
        request=f"{method}Request",
        response=f"{method}Response",
        mutation=mutation,
        tag=f"gridapi.v1.{service}",
    )
