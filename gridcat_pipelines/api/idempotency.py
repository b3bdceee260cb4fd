"""``Idempotency-Key`` on mutations (the catalog RPC conventions): the first response is kept and replayed.

One row per (principal, key) in ``api_idempotency`` (migration 0005), shared by every server
process on the database:

- no row: the request runs; its row is ``IN_FLIGHT`` until the response is stored (``DONE``);
- ``DONE`` with the same request hash: the stored status and body come back unchanged;
- the same key with a different request (method, path or message): 422 ``invalid_argument``;
- ``IN_FLIGHT`` (the first is still running): 409 ``aborted``; an in-flight row older than
  ``in_flight_timeout`` (its server died) is taken over by the next request.

Every claim gets a fresh ``claim_id``; a response is stored (or a 5xx claim dropped) only by
the claim that holds the row, so a first request that was merely slow, not dead, cannot
overwrite the response of the request that took its key over.

A 5xx response is not kept (the row is dropped), so a retry after a transient failure runs
again. Rows older than ``retention`` are deleted as new keys arrive.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gridcat_pipelines.api.errors import HttpError
from gridcat_pipelines.errors import ABORTED, INVALID_ARGUMENT, GridcatError
from gridcat_pipelines.state.db import dialect_insert, write_connection
from gridcat_pipelines.state.models import check_idempotency_key
from gridcat_pipelines.state.tables import UTCDateTime, metadata

IN_FLIGHT = "IN_FLIGHT"
DONE = "DONE"

api_idempotency = sa.Table(
    "api_idempotency",
    metadata,
    sa.Column("principal", sa.Text, primary_key=True),
    sa.Column("idem_key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("response_body", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime),
    sa.Column("claim_id", sa.Text),
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def request_hash(method: str, path: str, message: Any) -> str:
    """SHA-256 over the method, the path and the canonical JSON of the checked message."""
    canonical = json.dumps([method, path, message], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Claim:
    """The go-ahead for a new request: ``token`` completes it (see :meth:`IdempotencyStore.complete`)."""

    token: str


@dataclass(frozen=True)
class StoredResponse:
    """The first response to a key: what every replay answers."""

    status: int
    body: bytes


class IdempotencyStore:
    """Claims keys, stores first responses, answers replays."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = _utcnow,
        in_flight_timeout: timedelta = timedelta(seconds=60),
        retention: timedelta = timedelta(hours=24),
    ):
        self.engine = engine
        self.clock = clock
        self.in_flight_timeout = in_flight_timeout
        self.retention = retention
        self._claims = 0

    @staticmethod
    def check_key(value: str) -> str:
        """The header value when it is a usable key (``invalid_argument`` otherwise)."""
        key = check_idempotency_key(value)
        if key is None:
            raise GridcatError(INVALID_ARGUMENT, "Idempotency-Key must not be empty")
        return key

    def claim(self, principal: str, key: str, digest: str) -> Claim | StoredResponse:
        """Claim ``key`` for a new request (a :class:`Claim`: go ahead) or return the stored response."""
        now = self.clock()
        token = uuid.uuid4().hex
        self._claims += 1
        with write_connection(self.engine) as conn, conn.begin():
            if self._claims % 500 == 1:
                conn.execute(api_idempotency.delete().where(api_idempotency.c.created_at < now - self.retention))
            inserted = conn.execute(
                dialect_insert(conn.dialect.name, api_idempotency)
                .on_conflict_do_nothing()
                .values(
                    principal=principal,
                    idem_key=key,
                    request_hash=digest,
                    state=IN_FLIGHT,
                    created_at=now,
                    claim_id=token,
                )
                .returning(api_idempotency.c.idem_key)
            ).first()
            if inserted is not None:
                return Claim(token)
            row = conn.execute(
                sa.select(api_idempotency).where(
                    api_idempotency.c.principal == principal, api_idempotency.c.idem_key == key
                )
            ).one()
            if row.request_hash != digest:
                raise HttpError(
                    422,
                    INVALID_ARGUMENT,
                    "Idempotency-Key was already used with a different request",
                    [{"idempotency_key": key}],
                )
            if row.state == DONE:
                return StoredResponse(int(row.status_code), row.response_body.encode("utf-8"))
            if row.created_at > now - self.in_flight_timeout:
                raise GridcatError(
                    ABORTED,
                    "a request with this Idempotency-Key is still in flight; retry later",
                    [{"idempotency_key": key}],
                )
            conn.execute(  # its server died mid-request: take the key over
                api_idempotency.update()
                .where(api_idempotency.c.principal == principal, api_idempotency.c.idem_key == key)
                .values(created_at=now, claim_id=token)
            )
            return Claim(token)

    def complete(self, principal: str, key: str, claim: Claim, status: int, body: bytes) -> bool:
        """Store the first response (a 5xx is dropped instead so a retry runs again); only the
        claim holding the key may: ``False`` (nothing stored) when it was taken over."""
        where = (
            api_idempotency.c.principal == principal,
            api_idempotency.c.idem_key == key,
            api_idempotency.c.state == IN_FLIGHT,
            api_idempotency.c.claim_id == claim.token,
        )
        with write_connection(self.engine) as conn, conn.begin():
            if status >= 500:
                return conn.execute(api_idempotency.delete().where(*where)).rowcount > 0
            return (
                conn.execute(
                    api_idempotency.update()
                    .where(*where)
                    .values(
                        state=DONE, status_code=status, response_body=body.decode("utf-8"), completed_at=self.clock()
                    )
                ).rowcount
                > 0
            )
