from google.protobuf import struct_pb2 as _struct_pb2
from gridcat_pipelines.api.gen.gridapi.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FilterOp(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FILTER_OP_UNSPECIFIED: _ClassVar[FilterOp]
    FILTER_OP_EQ: _ClassVar[FilterOp]
FILTER_OP_UNSPECIFIED: FilterOp
FILTER_OP_EQ: FilterOp

class GetStateRequest(_message.Message):
    __slots__ = ("source", "customer_id", "query_name", "logical_date")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_DATE_FIELD_NUMBER: _ClassVar[int]
    source: str
    customer_id: str
    query_name: str
    logical_date: str
    def __init__(self, source: _Optional[str] = ..., customer_id: _Optional[str] = ..., query_name: _Optional[str] = ..., logical_date: _Optional[str] = ...) -> None: ...

class GetStateResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: _common_pb2.PartitionState
    def __init__(self, state: _Optional[_Union[_common_pb2.PartitionState, _Mapping]] = ...) -> None: ...

class StateFilter(_message.Message):
    __slots__ = ("key", "op", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    op: FilterOp
    value: FilterValue
    def __init__(self, key: _Optional[str] = ..., op: _Optional[_Union[FilterOp, str]] = ..., value: _Optional[_Union[FilterValue, _Mapping]] = ...) -> None: ...

class FilterValue(_message.Message):
    __slots__ = ("string_value",)
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    def __init__(self, string_value: _Optional[str] = ...) -> None: ...

class ListStatesRequest(_message.Message):
    __slots__ = ("filters", "page_size", "page_token", "status", "source", "customer_id", "query_name", "from_date", "to_date")
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_NAME_FIELD_NUMBER: _ClassVar[int]
    FROM_DATE_FIELD_NUMBER: _ClassVar[int]
    TO_DATE_FIELD_NUMBER: _ClassVar[int]
    filters: _containers.RepeatedCompositeFieldContainer[StateFilter]
    page_size: int
    page_token: str
    status: _common_pb2.StateStatus
    source: str
    customer_id: str
    query_name: str
    from_date: str
    to_date: str
    def __init__(self, filters: _Optional[_Iterable[_Union[StateFilter, _Mapping]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.StateStatus, str]] = ..., source: _Optional[str] = ..., customer_id: _Optional[str] = ..., query_name: _Optional[str] = ..., from_date: _Optional[str] = ..., to_date: _Optional[str] = ...) -> None: ...

class ListStatesResponse(_message.Message):
    __slots__ = ("states", "next_page_token", "applied_facets", "non_facet_filters")
    STATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FACETS_FIELD_NUMBER: _ClassVar[int]
    NON_FACET_FILTERS_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedCompositeFieldContainer[_common_pb2.PartitionState]
    next_page_token: str
    applied_facets: _containers.RepeatedScalarFieldContainer[str]
    non_facet_filters: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, states: _Optional[_Iterable[_Union[_common_pb2.PartitionState, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., applied_facets: _Optional[_Iterable[str]] = ..., non_facet_filters: _Optional[_Iterable[str]] = ...) -> None: ...

class GetStateHistoryRequest(_message.Message):
    __slots__ = ("source", "customer_id", "query_name", "logical_date")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_DATE_FIELD_NUMBER: _ClassVar[int]
    source: str
    customer_id: str
    query_name: str
    logical_date: str
    def __init__(self, source: _Optional[str] = ..., customer_id: _Optional[str] = ..., query_name: _Optional[str] = ..., logical_date: _Optional[str] = ...) -> None: ...

class GetStateHistoryResponse(_message.Message):
    __slots__ = ("history",)
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    history: _containers.RepeatedCompositeFieldContainer[_common_pb2.HistoryEntry]
    def __init__(self, history: _Optional[_Iterable[_Union[_common_pb2.HistoryEntry, _Mapping]]] = ...) -> None: ...

class RecordResultRequest(_message.Message):
    __slots__ = ("source", "customer_id", "query_name", "logical_date", "run_id", "status", "record_count", "schema_version", "error_message", "tags")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_DATE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    source: str
    customer_id: str
    query_name: str
    logical_date: str
    run_id: str
    status: _common_pb2.StateStatus
    record_count: int
    schema_version: str
    error_message: str
    tags: _struct_pb2.Struct
    def __init__(self, source: _Optional[str] = ..., customer_id: _Optional[str] = ..., query_name: _Optional[str] = ..., logical_date: _Optional[str] = ..., run_id: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.StateStatus, str]] = ..., record_count: _Optional[int] = ..., schema_version: _Optional[str] = ..., error_message: _Optional[str] = ..., tags: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class RecordResultResponse(_message.Message):
    __slots__ = ("outcome", "state")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    outcome: _common_pb2.ResultOutcome
    state: _common_pb2.PartitionState
    def __init__(self, outcome: _Optional[_Union[_common_pb2.ResultOutcome, str]] = ..., state: _Optional[_Union[_common_pb2.PartitionState, _Mapping]] = ...) -> None: ...

class SetAuthoritativeRequest(_message.Message):
    __slots__ = ("source", "customer_id", "query_name", "logical_date", "run_id", "expected_version")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_DATE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    source: str
    customer_id: str
    query_name: str
    logical_date: str
    run_id: str
    expected_version: int
    def __init__(self, source: _Optional[str] = ..., customer_id: _Optional[str] = ..., query_name: _Optional[str] = ..., logical_date: _Optional[str] = ..., run_id: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class SetAuthoritativeResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: _common_pb2.PartitionState
    def __init__(self, state: _Optional[_Union[_common_pb2.PartitionState, _Mapping]] = ...) -> None: ...
