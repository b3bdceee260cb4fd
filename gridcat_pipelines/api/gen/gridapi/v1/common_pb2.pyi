import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StateStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATE_STATUS_UNSPECIFIED: _ClassVar[StateStatus]
    STATE_STATUS_PENDING: _ClassVar[StateStatus]
    STATE_STATUS_SUCCESS: _ClassVar[StateStatus]
    STATE_STATUS_FAILED: _ClassVar[StateStatus]

class ResultOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESULT_OUTCOME_UNSPECIFIED: _ClassVar[ResultOutcome]
    RESULT_OUTCOME_APPLIED: _ClassVar[ResultOutcome]
    RESULT_OUTCOME_SUPERSEDED: _ClassVar[ResultOutcome]
    RESULT_OUTCOME_REPLAYED: _ClassVar[ResultOutcome]
    RESULT_OUTCOME_REPOINTED: _ClassVar[ResultOutcome]
STATE_STATUS_UNSPECIFIED: StateStatus
STATE_STATUS_PENDING: StateStatus
STATE_STATUS_SUCCESS: StateStatus
STATE_STATUS_FAILED: StateStatus
RESULT_OUTCOME_UNSPECIFIED: ResultOutcome
RESULT_OUTCOME_APPLIED: ResultOutcome
RESULT_OUTCOME_SUPERSEDED: ResultOutcome
RESULT_OUTCOME_REPLAYED: ResultOutcome
RESULT_OUTCOME_REPOINTED: ResultOutcome

class PartitionState(_message.Message):
    __slots__ = ("source", "customer_id", "query_name", "logical_date", "status", "current_run_id", "schema_version", "record_count", "updated_at", "error_message", "attempt_count", "version", "tags")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_DATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    source: str
    customer_id: str
    query_name: str
    logical_date: str
    status: StateStatus
    current_run_id: str
    schema_version: str
    record_count: int
    updated_at: _timestamp_pb2.Timestamp
    error_message: str
    attempt_count: int
    version: int
    tags: _containers.ScalarMap[str, str]
    def __init__(self, source: _Optional[str] = ..., customer_id: _Optional[str] = ..., query_name: _Optional[str] = ..., logical_date: _Optional[str] = ..., status: _Optional[_Union[StateStatus, str]] = ..., current_run_id: _Optional[str] = ..., schema_version: _Optional[str] = ..., record_count: _Optional[int] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error_message: _Optional[str] = ..., attempt_count: _Optional[int] = ..., version: _Optional[int] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("id", "source", "customer_id", "query_name", "logical_date", "run_id", "outcome", "status", "schema_version", "record_count", "error_message", "tags", "state_version", "change_seq", "recorded_at", "idempotency_key")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_DATE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    STATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGE_SEQ_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    id: int
    source: str
    customer_id: str
    query_name: str
    logical_date: str
    run_id: str
    outcome: ResultOutcome
    status: StateStatus
    schema_version: str
    record_count: int
    error_message: str
    tags: _containers.ScalarMap[str, str]
    state_version: int
    change_seq: int
    recorded_at: _timestamp_pb2.Timestamp
    idempotency_key: str
    def __init__(self, id: _Optional[int] = ..., source: _Optional[str] = ..., customer_id: _Optional[str] = ..., query_name: _Optional[str] = ..., logical_date: _Optional[str] = ..., run_id: _Optional[str] = ..., outcome: _Optional[_Union[ResultOutcome, str]] = ..., status: _Optional[_Union[StateStatus, str]] = ..., schema_version: _Optional[str] = ..., record_count: _Optional[int] = ..., error_message: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., state_version: _Optional[int] = ..., change_seq: _Optional[int] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class ErrorDetail(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: _struct_pb2.Value
    def __init__(self, value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
