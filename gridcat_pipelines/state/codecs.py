"""Rows and stored JSON as the store's data objects, and back: table rows to
``PartitionState`` / ``HistoryEntry`` / ``StateChange``, a state to its table row, stored
idempotent responses (JSON) to states and outcomes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gridcat_pipelines.state.keys import PartitionKey
from gridcat_pipelines.state.models import HistoryEntry, PartitionState, RecordOutcome, StateChange


def key_of(row: Any) -> PartitionKey:
    """The partition key of a row that has the four key columns."""
    return PartitionKey(row.source, row.customer_id, row.query_name, row.logical_date)


def state_from_row(row: Any) -> PartitionState:
    """A ``partition_state`` row as a state."""
    return PartitionState(
        key=key_of(row),
        status=row.status,
        current_run_id=row.current_run_id,
        schema_version=row.schema_version,
        record_count=row.record_count,
        updated_at=row.updated_at,
        error_message=row.error_message,
        attempt_count=row.attempt_count,
        version=row.version,
        tags=dict(row.tags or {}),
    )


def state_to_row(state: PartitionState) -> dict[str, Any]:
    """A state as the values of its ``partition_state`` row."""
    return {
        "source": state.key.source,
        "customer_id": state.key.customer_id,
        "query_name": state.key.query_name,
        "logical_date": state.key.logical_date,
        "status": state.status,
        "current_run_id": state.current_run_id,
        "schema_version": state.schema_version,
        "record_count": state.record_count,
        "updated_at": state.updated_at,
        "error_message": state.error_message,
        "attempt_count": state.attempt_count,
        "tags": state.tags,
        "version": state.version,
    }


def history_from_row(row: Any) -> HistoryEntry:
    """A ``partition_state_history`` row as a history entry."""
    return HistoryEntry(
        id=row.id,
        key=key_of(row),
        run_id=row.run_id,
        outcome=row.outcome,
        status=row.status,
        schema_version=row.schema_version,
        record_count=row.record_count,
        error_message=row.error_message,
        tags=row.tags,
        state_version=row.state_version,
        change_seq=row.change_seq,
        recorded_at=row.recorded_at,
        idempotency_key=row.idempotency_key,
    )


def change_from_row(row: Any) -> StateChange:
    """A ``partition_state_history`` row that took a change seq as a change-feed entry."""
    return StateChange(
        seq=row.change_seq,
        key=key_of(row),
        kind=row.outcome,
        status=row.status,
        run_id=row.run_id,
        version=row.state_version,
        record_count=row.record_count,
        changed_at=row.recorded_at,
    )


def state_from_json(data: dict[str, Any]) -> PartitionState:
    """A state as ``PartitionState.to_json`` stored it (in an idempotent response)."""
    key = PartitionKey.parse(data["customer_id"], data["query_name"], data["logical_date"], data["source"])
    updated = data.get("updated_at")
    return PartitionState(
        key=key,
        status=data["status"],
        current_run_id=data["current_run_id"],
        schema_version=data["schema_version"],
        record_count=data["record_count"],
        updated_at=None if updated is None else datetime.fromisoformat(updated.replace("Z", "+00:00")),
        error_message=data["error_message"],
        attempt_count=data["attempt_count"],
        version=data["version"],
        tags=dict(data.get("tags") or {}),
    )


def outcome_from_json(data: dict[str, Any]) -> RecordOutcome:
    """An outcome as ``RecordOutcome.to_json`` stored it (in an idempotent response)."""
    return RecordOutcome(data["outcome"], state_from_json(data["state"]))
