"""The partition state store: tables, migrations, the store and its data objects."""

from gridcat_pipelines.state.keys import DEFAULT_SOURCE, PartitionKey
from gridcat_pipelines.state.models import (
    HistoryEntry,
    PartitionState,
    RecordOutcome,
    StateChange,
    StateFilter,
    StatePage,
    ValidationResult,
)
from gridcat_pipelines.state.store import StateStore

__all__ = [
    "DEFAULT_SOURCE",
    "HistoryEntry",
    "PartitionKey",
    "PartitionState",
    "RecordOutcome",
    "StateChange",
    "StateFilter",
    "StatePage",
    "StateStore",
    "ValidationResult",
]
