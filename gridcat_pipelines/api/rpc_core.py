"""One protobuf call of the gridapi.v1 services, whatever carried it (binary Connect or gRPC).

:func:`answer` runs an RPC's route for a decoded request message exactly as the JSON path runs
it: the message becomes the JSON API's dict (:func:`~gridcat_pipelines.api.proto_messages.to_dict`),
is checked against the same JSON Schema, and goes to the same handler in the API's worker
threads, through the same idempotency store when a key is sent. The answer is filled into the
response message. Every failure is a :class:`~gridcat_pipelines.errors.GridcatError` (or the
API's :class:`~gridcat_pipelines.api.errors.HttpError`), which each transport turns into its
own error with the same code, message and details.
"""

from __future__ import annotations

import json
import logging

from google.protobuf.message import Message
from sqlalchemy.exc import OperationalError

from gridcat_pipelines.api.auth import Principal
from gridcat_pipelines.api.calls import Call
from gridcat_pipelines.api.errors import HttpError
from gridcat_pipelines.api.messages import check_text, validate
from gridcat_pipelines.api.proto_messages import fill, to_dict
from gridcat_pipelines.api.route import Route
from gridcat_pipelines.api.rpc_host import RpcHost
from gridcat_pipelines.api.schemas import REQUESTS
from gridcat_pipelines.errors import INTERNAL, UNAVAILABLE, GridcatError

log = logging.getLogger("gridcat.api")

REPLAYED_HEADER = "idempotent-replayed"


def authorize(api: RpcHost, route: Route, authorization: str | None) -> Principal:
    """The caller behind the ``authorization`` header, allowed to call ``route`` (or the error)."""
    principal = api.auth.authenticate(authorization)
    principal.require(route.role)
    return principal


def answer(
    api: RpcHost,
    route: Route,
    request: Message,
    response: Message,
    principal: Principal,
    idempotency_key: str | None,
) -> bool:
    """Fill ``response`` with ``route``'s answer to ``request``; ``True`` when it is the stored
    first answer to an idempotency key (a replay). Raises ``GridcatError`` / ``HttpError``.
    Blocking (the database): call it from a worker thread."""
    try:
        message = to_dict(request)
        check_text(message)
        validate(message, REQUESTS[route.request])
        call = Call(message=message, principal=principal)
        key = idempotency_key if route.mutation else None
        if key is None:
            fill(response, route.handler(api.services, call))
            return False
        key = api.services.idempotency.check_key(key)
        stored = api.run_once_blocking(route, call, principal, key, route.path)
        payload = json.loads(stored.body)
        if stored.status >= 400:
            raise GridcatError(payload["code"].upper(), payload["message"], payload.get("details"))
        fill(response, payload)
        return REPLAYED_HEADER in stored.headers
    except (GridcatError, HttpError):
        raise
    except OperationalError as exc:
        log.warning("database unavailable: %s", str(exc).splitlines()[0])
        raise GridcatError(UNAVAILABLE, "the database is unavailable; retry later") from None
    except Exception:
        log.exception("internal error serving %s", route.path)
        raise GridcatError(INTERNAL, "internal error (logged by the server)") from None
