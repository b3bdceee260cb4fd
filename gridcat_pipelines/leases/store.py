"""Begin, renew, end and list leases; the set of runs live leases pin.

A lease pins, for each partition read, the run that is authoritative (``success``) when the
lease begins. It lives until it is ended (commit or abort) or its ``expires_at`` passes; an
expired lease releases its pins without any clean-up job. Renewing never shortens a lease.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from gridcat_pipelines.errors import failed_precondition, invalid_argument, not_found
from gridcat_pipelines.leases.tables import run_lease, run_lease_pin
from gridcat_pipelines.state import PartitionKey, StateStore
from gridcat_pipelines.state.db import write_connection
from gridcat_pipelines.state.tables import KEY_COLUMNS
from gridcat_pipelines.timestamps import iso_utc

ACTIVE, ENDED_COMMIT, ENDED_ABORT, EXPIRED = "ACTIVE", "ENDED_COMMIT", "ENDED_ABORT", "EXPIRED"
DEFAULT_TTL_SECONDS = 300
MAX_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Lease:
    """A lease and the runs it pins (``status`` reads ``EXPIRED`` once ``expires_at`` passed)."""

    lease_id: str
    status: str
    expires_at: datetime
    created_at: datetime
    ended_at: datetime | None
    holder: str | None
    pins: dict[PartitionKey, str]

    @property
    def run_ids(self) -> list[str]:
        """The pinned run ids, in key order."""
        return [self.pins[k] for k in sorted(self.pins)]

    def to_json(self) -> dict[str, Any]:
        """``{"lease_id", "run_ids", "expires_at", ...}`` as ``gridcat leases`` prints it."""
        return {
            "lease_id": self.lease_id,
            "run_ids": self.run_ids,
            "expires_at": iso_utc(self.expires_at),
            "status": self.status,
            "created_at": iso_utc(self.created_at),
            "ended_at": iso_utc(self.ended_at),
            "holder": self.holder,
            "pins": [{**k.to_json(), "run_id": r} for k, r in sorted(self.pins.items())],
        }


def _pin_key(row: Any) -> PartitionKey:
    return PartitionKey(row.source, row.customer_id, row.query_name, row.logical_date)


def _check_ttl(ttl_seconds: float) -> float:
    if (
        isinstance(ttl_seconds, bool)
        or not isinstance(ttl_seconds, (int, float))
        or not 0 < ttl_seconds <= MAX_TTL_SECONDS
    ):
        raise invalid_argument(f"ttl {ttl_seconds!r} must be a number of seconds in (0, {MAX_TTL_SECONDS}]")
    return float(ttl_seconds)


class LeaseStore:
    """Leases over the state store's database."""

    def __init__(self, store: StateStore, *, clock: Callable[[], datetime] | None = None):
        self.store = store
        self.engine = store.engine
        self._clock = clock or (lambda: datetime.now(UTC))

    def begin(
        self,
        keys: Sequence[PartitionKey],
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        holder: str | None = None,
        expected_runs: dict[PartitionKey, str] | None = None,
    ) -> Lease:
        """Pin the authoritative run of each key. ``FAILED_PRECONDITION`` when a key has no
        success state, or (with ``expected_runs``) its authoritative run is another one."""
        ttl = _check_ttl(ttl_seconds)
        if not keys:
            raise invalid_argument("a lease needs at least one partition")
        now = self._clock()
        lease_id = str(uuid.uuid4())
        # the states are read under the partitions' state locks, in the transaction that
        # writes the pins: retention (which re-checks pins under the same locks) and a
        # re-point are ordered before or after this lease, never in between
        with self.store.hold(keys) as held:
            conn = held.conn
            pins: dict[PartitionKey, str] = {}
            for key, state in held.states.items():
                if state.status != "success" or not state.current_run_id:
                    raise failed_precondition(f"{key} has no authoritative run to read (state {state.status})")
                if expected_runs and expected_runs.get(key, state.current_run_id) != state.current_run_id:
                    raise failed_precondition(
                        f"{key}: run {expected_runs[key]} is no longer authoritative ({state.current_run_id} is)"
                    )
                pins[key] = state.current_run_id
            conn.execute(
                run_lease.insert().values(
                    lease_id=lease_id,
                    status=ACTIVE,
                    holder=holder,
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl),
                    ended_at=None,
                )
            )
            conn.execute(
                run_lease_pin.insert(),
                [{"lease_id": lease_id, **dict(zip(KEY_COLUMNS, k.as_tuple())), "run_id": r} for k, r in pins.items()],
            )
        return self.get(lease_id)

    @contextmanager
    def kept(self, lease: Lease, *, ttl_seconds: float, renew_every: float | None = None) -> Iterator[Lease]:
        """Keep ``lease`` alive for the block: a background thread renews it every
        ``renew_every`` seconds (default a third of the ttl), so a long read never outlives
        it; the block ending normally ends the lease, an exception aborts it."""
        ttl = _check_ttl(ttl_seconds)
        stop = threading.Event()
        interval = renew_every if renew_every is not None else ttl / 3

        def renew_until_stopped() -> None:
            while not stop.wait(interval):
                try:
                    self.renew(lease.lease_id, ttl_seconds=ttl)
                except Exception:  # noqa: BLE001 - a missed renewal is retried at the next beat
                    continue

        beat = threading.Thread(target=renew_until_stopped, name=f"lease-{lease.lease_id[:8]}", daemon=True)
        beat.start()
        try:
            yield lease
        except BaseException:
            stop.set()
            beat.join()
            self.end(lease.lease_id, abort=True)
            raise
        stop.set()
        beat.join()
        self.end(lease.lease_id)

    def renew(self, lease_id: str, *, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> Lease:
        """Extend a live lease to at least now + ttl (never shorter than it was)."""
        ttl = _check_ttl(ttl_seconds)
        with write_connection(self.engine) as conn, conn.begin():
            lease = self._live(conn, lease_id)
            expires = max(lease.expires_at, self._clock() + timedelta(seconds=ttl))
            conn.execute(run_lease.update().where(run_lease.c.lease_id == lease_id).values(expires_at=expires))
        return self.get(lease_id)

    def end(self, lease_id: str, *, abort: bool = False) -> Lease:
        """End a lease (commit, or abort); its pins are released. Ending it again changes nothing."""
        with write_connection(self.engine) as conn, conn.begin():
            lease = self._read(conn, lease_id)
            if lease.status == ACTIVE:
                conn.execute(
                    run_lease.update()
                    .where(run_lease.c.lease_id == lease_id)
                    .values(status=ENDED_ABORT if abort else ENDED_COMMIT, ended_at=self._clock())
                )
        return self.get(lease_id)

    def get(self, lease_id: str) -> Lease:
        """One lease (``NOT_FOUND`` if unknown)."""
        with self.engine.connect() as conn:
            return self._read(conn, lease_id)

    def list(self, *, include_ended: bool = False) -> list[Lease]:
        """Live leases (and, with ``include_ended``, ended and expired ones), newest first."""
        with self.engine.connect() as conn:
            ids = conn.execute(sa.select(run_lease.c.lease_id).order_by(run_lease.c.created_at.desc())).scalars().all()
            leases = [self._read(conn, i) for i in ids]
        return [l for l in leases if include_ended or l.status == ACTIVE]

    def pinned_runs(self, conn: sa.Connection | None = None) -> set[tuple[PartitionKey, str]]:
        """Every (partition, run) a live lease pins now (read on ``conn`` when given, e.g. a
        transaction that holds the partitions' states still)."""
        now = self._clock()
        query = (
            sa.select(run_lease_pin)
            .join(run_lease, run_lease.c.lease_id == run_lease_pin.c.lease_id)
            .where(run_lease.c.status == ACTIVE, run_lease.c.expires_at > now)
        )
        if conn is not None:
            return {(_pin_key(r), r.run_id) for r in conn.execute(query)}
        with self.engine.connect() as own:
            return {(_pin_key(r), r.run_id) for r in own.execute(query)}

    def _read(self, conn: sa.Connection, lease_id: str) -> Lease:
        if not isinstance(lease_id, str) or not lease_id:
            raise invalid_argument("lease_id must be a non-empty string")
        row = conn.execute(sa.select(run_lease).where(run_lease.c.lease_id == lease_id)).first()
        if row is None:
            raise not_found(f"no lease {lease_id}")
        pins = {
            PartitionKey(p.source, p.customer_id, p.query_name, p.logical_date): p.run_id
            for p in conn.execute(sa.select(run_lease_pin).where(run_lease_pin.c.lease_id == lease_id))
        }
        status = row.status
        if status == ACTIVE and row.expires_at <= self._clock():
            status = EXPIRED
        return Lease(row.lease_id, status, row.expires_at, row.created_at, row.ended_at, row.holder, pins)

    def _live(self, conn: sa.Connection, lease_id: str) -> Lease:
        lease = self._read(conn, lease_id)
        if lease.status != ACTIVE:
            raise failed_precondition(f"lease {lease_id} is {lease.status}; begin a new one")
        return lease
