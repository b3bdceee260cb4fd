"""Idempotency keys of the store's writes: a response is stored per ``(scope, key)`` with the
hash of its request, so a retried request gets the first answer and a key reused with another
request is ``INVALID_ARGUMENT``. (PostgreSQL's batched write path reads and stores them in its
own round trips, see ``pg_write``; both paths check with :func:`check_stored`.)"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.state.key_queries import chunks
from gridcat_pipelines.state.tables import idempotency_record

SCOPE_RECORD = "record_result"
SCOPE_REPOINT = "set_authoritative"

StoredResponse = tuple[str, str, dict[str, Any]]  # (idempotency key, request hash, response)


def check_stored(rows: Iterable[StoredResponse], keyed: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Stored ``(key, request hash, response)`` rows as ``{key: response}``; a key stored for
    another request than ``keyed`` says is ``INVALID_ARGUMENT``."""
    found = {}
    for key, request_hash, response in rows:
        if request_hash != keyed[key]:
            raise invalid_argument(
                f"idempotency key {key!r} was used with a different request", {"idempotency_key": key}
            )
        found[key] = response
    return found


def stored_responses(conn: Connection, scope: str, keyed: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Stored responses of the keys of ``keyed`` (``{key: request hash}``) seen before in
    ``scope``; a key reused with another request is ``INVALID_ARGUMENT``."""
    t = idempotency_record
    rows: list[StoredResponse] = []
    for chunk in chunks(sorted(keyed)):
        query = sa.select(t.c.idempotency_key, t.c.request_hash, t.c.response).where(
            t.c.scope == scope, t.c.idempotency_key.in_(list(chunk))
        )
        rows.extend(tuple(row) for row in conn.execute(query))
    return check_stored(rows, keyed)


def save_responses(conn: Connection, scope: str, responses: list[StoredResponse], now: datetime) -> None:
    """Store ``(key, request hash, response)`` rows in ``scope``, created at ``now``."""
    rows = [
        {"scope": scope, "idempotency_key": k, "request_hash": h, "response": r, "created_at": now}
        for k, h, r in responses
    ]
    for chunk in chunks(rows):
        conn.execute(idempotency_record.insert(), list(chunk))
