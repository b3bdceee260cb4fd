"""What the store's writes decide, as pure functions of what they read (no I/O).

Each offered result (:func:`decide`) is decided in this order:

1. a result equal to the last one offered for the same run is ``replayed`` and changes
   nothing (checked first, so a retried verdict of a newer run does not undo an operator's
   re-point to an older one);
2. a result for a run older than the state's current run is recorded in history as
   ``superseded`` and never applied;
3. anything else is ``applied``: the row's ``version`` goes up by one and the change gets the
   next ``change_seq`` of the change feed.

Every offer is a history row. An operator re-point (:func:`repointed`) makes a run's last
recorded result the state. The decisions are the same for both dialects; what is read before
and written after them differs (``sql_write``, ``pg_write``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from gridcat_pipelines.errors import failed_precondition, invalid_argument, not_found
from gridcat_pipelines.state.codecs import outcome_from_json
from gridcat_pipelines.state.keys import PartitionKey
from gridcat_pipelines.state.models import (
    OUTCOME_APPLIED,
    OUTCOME_REPLAYED,
    OUTCOME_REPOINTED,
    OUTCOME_SUPERSEDED,
    PartitionState,
    RecordOutcome,
    ValidationResult,
)

_NO_ROW = PartitionState.implicit_pending(PartitionKey("", "", "", date.min))  # key never read
_REPOINT_COPIED = ("status", "schema_version", "record_count", "error_message", "tags", "result_hash")


@dataclass
class RunInfo:
    """What the history says about one run of one key."""

    last: dict[str, Any]  # the last history row offered for the run
    ever_applied: bool


@dataclass
class Reads:
    """What a write transaction read before deciding: stored idempotent responses (request
    hashes checked), the locked state rows, history of the offered runs of those keys."""

    stored: dict[str, dict[str, Any]]
    states: dict[PartitionKey, PartitionState]
    runs: dict[tuple[PartitionKey, str], RunInfo]


@dataclass
class Plan:
    """What to write and answer for one batch."""

    outcomes: list[RecordOutcome]
    existing: set[PartitionKey]  # keys with a state row before the batch
    changed: dict[PartitionKey, PartitionState] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # in offer order
    responses: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


def decide(items: list[ValidationResult], reads: Reads, now: datetime) -> Plan:
    """Each result's outcome, in order, against the evolving state (see the module docstring).

    A result whose idempotency key has a stored response is answered from it; a later result
    with the key of an earlier one in the batch gets that one's outcome.
    """
    first_in_batch = first_of_each_key(items, reads.stored)
    plan = Plan(outcomes=[None] * len(items), existing=set(reads.states))  # type: ignore[list-item]
    states, runs = dict(reads.states), dict(reads.runs)
    for index, item in enumerate(items):
        idem = item.idempotency_key
        if idem and idem in reads.stored:
            plan.outcomes[index] = outcome_from_json(reads.stored[idem])
        elif idem and first_in_batch[idem] != index:
            plan.outcomes[index] = plan.outcomes[first_in_batch[idem]]
        else:
            result = plan.outcomes[index] = decide_one(item, states, runs, plan, now)
            if idem:
                plan.responses.append((idem, item.request_hash(), result.to_json()))
    return plan


def first_of_each_key(items: list[ValidationResult], stored: dict[str, Any]) -> dict[str, int]:
    """Index of the first item with each idempotency key not answered from ``stored``; a
    later item with the same key and another request is ``INVALID_ARGUMENT``."""
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        idem = item.idempotency_key
        if not idem or idem in stored:
            continue
        if idem not in first:
            first[idem] = index
        elif items[first[idem]].request_hash() != item.request_hash():
            raise invalid_argument(
                f"idempotency key {idem!r} was used with a different request", {"idempotency_key": idem}
            )
    return first


def decide_one(
    item: ValidationResult,
    states: dict[PartitionKey, PartitionState],
    runs: dict[tuple[PartitionKey, str], RunInfo],
    plan: Plan,
    now: datetime,
) -> RecordOutcome:
    """Replayed, superseded or applied: one result against the current state of its key.

    Updates ``states`` and ``runs`` for the results after it, and adds its history row (and
    an applied state) to ``plan``; ``FAILED_PRECONDITION`` when its expected version moved.
    """
    key = item.key
    current = states.get(key) or _NO_ROW  # a new key: implicit pending (built only if answered)
    if item.expected_version is not None and item.expected_version != current.version:
        raise failed_precondition(
            f"state of {key} is at version {current.version}, not {item.expected_version}",
            {"current_version": current.version, "expected_version": item.expected_version},
        )
    result_hash = item.result_hash()
    info = runs.get((key, item.run_id))
    ever_applied = info is not None and info.ever_applied
    if info is not None and info.last["result_hash"] == result_hash:
        outcome, state = OUTCOME_REPLAYED, current
    elif current.current_run_id is not None and item.run_id < current.current_run_id:
        outcome, state = OUTCOME_SUPERSEDED, current
    else:
        outcome = OUTCOME_APPLIED
        state = PartitionState(
            key=key,
            status=item.status,
            current_run_id=item.run_id,
            schema_version=item.schema_version,
            record_count=item.record_count,
            updated_at=now,
            error_message=item.error_message,
            attempt_count=current.attempt_count + (0 if ever_applied else 1),
            version=current.version + 1,
            tags=dict(current.tags) if item.tags is None else dict(item.tags),
        )
        states[key] = plan.changed[key] = state
    if state is _NO_ROW:
        state = PartitionState.implicit_pending(key)
    row = {
        "source": key.source,
        "customer_id": key.customer_id,
        "query_name": key.query_name,
        "logical_date": key.logical_date,
        "run_id": item.run_id,
        "outcome": outcome,
        "status": item.status,
        "schema_version": item.schema_version,
        "record_count": item.record_count,
        "error_message": item.error_message,
        "tags": item.tags,
        "result_hash": result_hash,
        "state_version": state.version,
        "change_seq": None,
        "recorded_at": now,
        "idempotency_key": item.idempotency_key,
    }
    plan.history.append(row)
    runs[(key, item.run_id)] = RunInfo(last=row, ever_applied=ever_applied or outcome == OUTCOME_APPLIED)
    return RecordOutcome(outcome, state)


def check_repoint_target(key: PartitionKey, current: PartitionState | None, expected_version: int) -> PartitionState:
    """The state a re-point of ``key`` moves: ``NOT_FOUND`` without a row,
    ``FAILED_PRECONDITION`` when it is not at ``expected_version``."""
    if current is None:
        raise not_found(f"no state for {key}: nothing to re-point")
    if current.version != expected_version:
        raise failed_precondition(
            f"state of {key} is at version {current.version}, not {expected_version}",
            {"current_version": current.version, "expected_version": expected_version},
        )
    return current


def check_run_recorded(key: PartitionKey, run_id: str, info: RunInfo | None) -> RunInfo:
    """What history says of the run a re-point goes to; ``NOT_FOUND`` when it was never offered."""
    if info is None:
        raise not_found(f"run {run_id} has no recorded result for {key}")
    return info


def repointed(
    current: PartitionState, run_id: str, info: RunInfo, now: datetime, idempotency_key: str | None
) -> tuple[PartitionState, dict[str, Any]]:
    """The state after a re-point of ``current`` to ``run_id`` (that run's last recorded result)
    and its ``repointed`` history row (``change_seq`` still to take)."""
    last = info.last
    state = PartitionState(
        key=current.key,
        status=last["status"],
        current_run_id=run_id,
        schema_version=last["schema_version"],
        record_count=last["record_count"],
        updated_at=now,
        error_message=last["error_message"],
        attempt_count=current.attempt_count + (0 if info.ever_applied else 1),
        version=current.version + 1,
        tags=current.tags if last["tags"] is None else dict(last["tags"]),
    )
    key = current.key
    row = {
        **{c: last[c] for c in _REPOINT_COPIED},
        "source": key.source,
        "customer_id": key.customer_id,
        "query_name": key.query_name,
        "logical_date": key.logical_date,
        "run_id": run_id,
        "outcome": OUTCOME_REPOINTED,
        "state_version": state.version,
        "change_seq": None,
        "recorded_at": state.updated_at,
        "idempotency_key": idempotency_key,
    }
    return state, row
