"""Plain data objects the state store takes and returns (no database or Dagster types)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from gridcat_pipelines.errors import invalid_argument
from gridcat_pipelines.run_ids import parse_run_id
from gridcat_pipelines.state.bounds import check_recordable
from gridcat_pipelines.state.keys import (
    STATUSES,
    PartitionKey,
    check_text,
    normalize_customer_id,
    parse_date,
    parse_name,
    parse_status,
    parse_tags,
)
from gridcat_pipelines.timestamps import iso_utc

OUTCOME_APPLIED = "applied"
OUTCOME_SUPERSEDED = "superseded"
OUTCOME_REPLAYED = "replayed"
OUTCOME_REPOINTED = "repointed"  # history only: an operator moved the authoritative run


@dataclass(frozen=True)
class PartitionState:
    """The state of one partition; ``version == 0`` means no row exists (implicit pending)."""

    key: PartitionKey
    status: str = "pending"
    current_run_id: str | None = None
    schema_version: str | None = None
    record_count: int | None = None
    updated_at: datetime | None = None
    error_message: str | None = None
    attempt_count: int = 0
    version: int = 0
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def implicit_pending(cls, key: PartitionKey) -> PartitionState:
        """The state of a key no validator has touched yet."""
        return cls(key=key)

    @property
    def exists(self) -> bool:
        """Whether a row backs this state (``False`` for implicit pending)."""
        return self.version > 0

    def to_json(self) -> dict[str, Any]:
        """The state with the state-store contract's field names, plus ``version`` and ``tags``."""
        return {
            **self.key.to_json(),
            "status": self.status,
            "current_run_id": self.current_run_id,
            "schema_version": self.schema_version,
            "record_count": self.record_count,
            "updated_at": iso_utc(self.updated_at),
            "error_message": self.error_message,
            "attempt_count": self.attempt_count,
            "version": self.version,
            "tags": dict(self.tags),
        }


@dataclass(frozen=True)
class ValidationResult:
    """One validator verdict on one raw run of one partition: the store's single write input.

    ``tags=None`` keeps the state's tags; a map replaces them. ``expected_version`` (optional)
    makes the write conditional on the row version; ``idempotency_key`` makes a retry return
    the first response.
    """

    key: PartitionKey
    run_id: str
    status: str
    schema_version: str | None = None
    record_count: int | None = None
    error_message: str | None = None
    tags: dict[str, str] | None = None
    expected_version: int | None = None
    idempotency_key: str | None = None

    @classmethod
    def parse(
        cls,
        *,
        customer_id: object,
        query_name: object,
        logical_date: object,
        run_id: object,
        status: object,
        source: object = "google_ads",
        schema_version: object = None,
        record_count: object = None,
        error_message: object = None,
        tags: object = None,
        expected_version: object = None,
        idempotency_key: object = None,
    ) -> ValidationResult:
        """Build a result from user input; every field is checked (``INVALID_ARGUMENT``)."""
        key = PartitionKey.parse(customer_id, query_name, logical_date, source)
        return cls(
            key=key,
            run_id=run_id,  # type: ignore[arg-type]
            status=status,  # type: ignore[arg-type]
            schema_version=schema_version,  # type: ignore[arg-type]
            record_count=record_count,  # type: ignore[arg-type]
            error_message=error_message,  # type: ignore[arg-type]
            tags=tags,  # type: ignore[arg-type]
            expected_version=expected_version,  # type: ignore[arg-type]
            idempotency_key=idempotency_key,  # type: ignore[arg-type]
        ).validated()

    def validated(self, now: datetime | None = None) -> ValidationResult:
        """This result with every field checked and normalised; a day or run id from the future
        (see ``gridcat_pipelines.state.bounds``) at ``now`` (default: the clock) is refused."""
        if not isinstance(self.key, PartitionKey):
            raise invalid_argument("key must be a PartitionKey")
        key = PartitionKey(
            source=parse_name(self.key.source, "source"),
            customer_id=normalize_customer_id(self.key.customer_id),
            query_name=parse_name(self.key.query_name, "query_name"),
            logical_date=parse_date(self.key.logical_date),
        )
        status = parse_status(self.status)
        record_count = self.record_count
        if record_count is not None and (
            isinstance(record_count, bool) or not isinstance(record_count, int) or record_count < 0
        ):
            raise invalid_argument(f"record_count {record_count!r} must be a non-negative integer")
        schema_version = check_text(self.schema_version, "schema_version")
        if schema_version is not None and not schema_version.strip():
            raise invalid_argument("schema_version must not be blank")
        error_message = check_text(self.error_message, "error_message")
        if status == "failed" and not error_message:
            raise invalid_argument("a failed result needs an error_message saying what failed")
        if status == "success" and error_message:
            raise invalid_argument("a success result carries no error_message")
        expected = self.expected_version
        if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int) or expected < 0):
            raise invalid_argument(f"expected_version {expected!r} must be a non-negative integer")
        idem = check_idempotency_key(self.idempotency_key)
        run_id = parse_run_id(self.run_id)
        check_recordable(key.logical_date, run_id, now or datetime.now(UTC))
        tags = None if self.tags is None else parse_tags(self.tags)
        if self.tags is None and _same((key, run_id, status), (self.key, self.run_id, self.status)):
            return self  # already normal (the usual case): no copy
        return ValidationResult(
            key=key,
            run_id=run_id,
            status=status,
            schema_version=schema_version,
            record_count=record_count,
            error_message=error_message,
            tags=tags,
            expected_version=expected,
            idempotency_key=idem,
        )

    def result_hash(self) -> str:
        """Digest of the verdict itself (not the key, run or request options): equal means a replay."""
        return _digest(
            {
                "status": self.status,
                "schema_version": self.schema_version,
                "record_count": self.record_count,
                "error_message": self.error_message,
                "tags": self.tags,
            }
        )

    def request_hash(self) -> str:
        """Digest of the whole request, for idempotency-key reuse checks."""
        return _digest(
            {
                **self.key.to_json(),
                "run_id": self.run_id,
                "result": self.result_hash(),
                "expected_version": self.expected_version,
            }
        )


def _same(normal: tuple[Any, ...], given: tuple[Any, ...]) -> bool:
    """Whether normalising changed nothing: equal values of the very same types, key fields too."""
    if normal != given:
        return False
    pairs = list(zip(normal, given))
    pairs += list(zip(normal[0].as_tuple(), given[0].as_tuple()))  # the key's fields
    return all(type(a) is type(b) for a, b in pairs)


def check_idempotency_key(value: object) -> str | None:
    """An optional idempotency key: 1 to 200 printable characters."""
    if value is None:
        return None
    if not isinstance(value, str) or not (1 <= len(value) <= 200) or not value.isprintable():
        raise invalid_argument("idempotency key must be 1 to 200 printable characters")
    return value


_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)  # = json.dumps(...)


def _digest(payload: dict[str, Any]) -> str:
    text = _CANONICAL_JSON.encode(payload)
    return hashlib.sha256(text.encode()).hexdigest()


def digest(payload: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``payload`` (sorted keys, no spaces)."""
    return _digest(payload)


@dataclass(frozen=True)
class RecordOutcome:
    """What recording a result did: ``applied``, ``superseded`` or ``replayed``, and the state after."""

    outcome: str
    state: PartitionState

    def to_json(self) -> dict[str, Any]:
        """``{"outcome", "state"}`` as ``states record --json`` prints it."""
        return {"outcome": self.outcome, "state": self.state.to_json()}


@dataclass(frozen=True)
class HistoryEntry:
    """One offered result or operator re-point, as recorded (append-only)."""

    id: int
    key: PartitionKey
    run_id: str
    outcome: str
    status: str
    schema_version: str | None
    record_count: int | None
    error_message: str | None
    tags: dict[str, str] | None
    state_version: int
    change_seq: int | None
    recorded_at: datetime
    idempotency_key: str | None

    def to_json(self) -> dict[str, Any]:
        """The entry with the state's field names for the result it carried."""
        return {
            "id": self.id,
            **self.key.to_json(),
            "run_id": self.run_id,
            "outcome": self.outcome,
            "status": self.status,
            "schema_version": self.schema_version,
            "record_count": self.record_count,
            "error_message": self.error_message,
            "tags": self.tags,
            "state_version": self.state_version,
            "change_seq": self.change_seq,
            "recorded_at": iso_utc(self.recorded_at),
            "idempotency_key": self.idempotency_key,
        }


@dataclass(frozen=True)
class StateChange:
    """One committed change of a state row, in the order of the change feed (``seq``)."""

    seq: int
    key: PartitionKey
    kind: str  # applied | repointed
    status: str
    run_id: str
    version: int
    record_count: int | None
    changed_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The change as JSON."""
        return {
            "seq": self.seq,
            **self.key.to_json(),
            "kind": self.kind,
            "status": self.status,
            "run_id": self.run_id,
            "version": self.version,
            "record_count": self.record_count,
            "changed_at": iso_utc(self.changed_at),
        }


@dataclass(frozen=True)
class StateFilter:
    """Base-column filters for listing states; every field optional."""

    status: str | None = None
    customer_id: str | None = None
    query_name: str | None = None
    source: str | None = None
    from_date: date | None = None
    to_date: date | None = None

    @classmethod
    def parse(
        cls,
        status: object = None,
        customer_id: object = None,
        query_name: object = None,
        source: object = None,
        from_date: object = None,
        to_date: object = None,
    ) -> StateFilter:
        """Build a filter from user input, checking every given field."""
        flt = cls(
            status=None if status is None else parse_status(status, STATUSES),
            customer_id=None if customer_id is None else normalize_customer_id(customer_id),
            query_name=None if query_name is None else parse_name(query_name, "query_name"),
            source=None if source is None else parse_name(source, "source"),
            from_date=None if from_date is None else parse_date(from_date, "from"),
            to_date=None if to_date is None else parse_date(to_date, "to"),
        )
        if flt.from_date and flt.to_date and flt.from_date > flt.to_date:
            raise invalid_argument(f"from {flt.from_date} is after to {flt.to_date}")
        return flt

    def fingerprint(self) -> dict[str, Any]:
        """The filter as plain JSON, used to bind page tokens to it."""
        return {
            "status": self.status,
            "customer_id": self.customer_id,
            "query_name": self.query_name,
            "source": self.source,
            "from": None if self.from_date is None else self.from_date.isoformat(),
            "to": None if self.to_date is None else self.to_date.isoformat(),
        }


@dataclass(frozen=True)
class StatePage:
    """One page of states and the opaque token for the next (empty at the end)."""

    states: list[PartitionState]
    next_page_token: str
    applied_facets: list[str] | None = None  # set when the listing had tag-facet filters
    non_facet_filters: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"states": [...], "next_page_token": "..."}``, plus ``applied_facets`` and
        ``non_facet_filters`` when the listing had tag-facet filters."""
        payload: dict[str, Any] = {
            "states": [s.to_json() for s in self.states],
            "next_page_token": self.next_page_token,
        }
        if self.applied_facets is not None:
            payload["applied_facets"] = list(self.applied_facets)
            payload["non_facet_filters"] = list(self.non_facet_filters or [])
        return payload
