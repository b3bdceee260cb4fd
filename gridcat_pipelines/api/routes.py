"""Every route the API serves, and how a request's method and path find one."""

from __future__ import annotations

from gridcat_pipelines.api import catalog_rest, facet_rpcs, state_rpcs
from gridcat_pipelines.api.errors import HttpError
from gridcat_pipelines.api.route import Route
from gridcat_pipelines.errors import NOT_FOUND, GridcatError

ROUTES: list[Route] = [*facet_rpcs.ROUTES, *state_rpcs.ROUTES, *catalog_rest.ROUTES]


class Router:
    """Finds the route for ``(method, path)``: 404 for an unknown path, 405 for a method the
    path does not serve (with ``Allow``). Static paths are looked up directly."""

    def __init__(self, routes: list[Route] | None = None):
        self.routes = list(routes or ROUTES)
        self._static: dict[str, dict[str, Route]] = {}
        self._templated: list[Route] = []
        for route in self.routes:
            if route.path_params:
                self._templated.append(route)
            else:
                self._static.setdefault(route.path, {})[route.method] = route

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route and its path parameters, or the 404/405 error."""
        candidates: dict[str, tuple[Route, dict[str, str]]] = {
            m: (r, {}) for m, r in self._static.get(path, {}).items()
        }
        for route in self._templated:
            if route.method not in candidates:
                params = route.match(path)
                if params is not None:
                    candidates[route.method] = (route, params)
        if not candidates:
            raise GridcatError(NOT_FOUND, f"no such path: {path}")
        if method not in candidates:
            allowed = ", ".join(sorted(candidates))
            raise HttpError(
                405,
                "UNIMPLEMENTED",
                f"method {method} is not allowed on {path}; use {allowed}",
                headers={"allow": allowed},
            )
        return candidates[method]
