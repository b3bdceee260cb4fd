import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FacetStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FACET_STATUS_UNSPECIFIED: _ClassVar[FacetStatus]
    FACET_STATUS_PROMOTING: _ClassVar[FacetStatus]
    FACET_STATUS_BACKFILLING: _ClassVar[FacetStatus]
    FACET_STATUS_ENABLED: _ClassVar[FacetStatus]
    FACET_STATUS_DISABLED: _ClassVar[FacetStatus]
    FACET_STATUS_FAILED: _ClassVar[FacetStatus]

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_PENDING: _ClassVar[JobStatus]
    JOB_STATUS_RUNNING: _ClassVar[JobStatus]
    JOB_STATUS_SUCCEEDED: _ClassVar[JobStatus]
    JOB_STATUS_FAILED: _ClassVar[JobStatus]

class BackfillMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKFILL_MODE_UNSPECIFIED: _ClassVar[BackfillMode]
    BACKFILL_MODE_FULL: _ClassVar[BackfillMode]
    BACKFILL_MODE_MISSING_ONLY: _ClassVar[BackfillMode]
FACET_STATUS_UNSPECIFIED: FacetStatus
FACET_STATUS_PROMOTING: FacetStatus
FACET_STATUS_BACKFILLING: FacetStatus
FACET_STATUS_ENABLED: FacetStatus
FACET_STATUS_DISABLED: FacetStatus
FACET_STATUS_FAILED: FacetStatus
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_PENDING: JobStatus
JOB_STATUS_RUNNING: JobStatus
JOB_STATUS_SUCCEEDED: JobStatus
JOB_STATUS_FAILED: JobStatus
BACKFILL_MODE_UNSPECIFIED: BackfillMode
BACKFILL_MODE_FULL: BackfillMode
BACKFILL_MODE_MISSING_ONLY: BackfillMode

class Facet(_message.Message):
    __slots__ = ("facet_id", "key_name", "column_name", "projection_column", "status", "create_index", "error", "reason", "promotion_started_at", "last_refresh_started_at", "last_refresh_succeeded_at", "disabled_at", "created_at", "updated_at")
    FACET_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    COLUMN_NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECTION_COLUMN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATE_INDEX_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_REFRESH_STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_REFRESH_SUCCEEDED_AT_FIELD_NUMBER: _ClassVar[int]
    DISABLED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    facet_id: str
    key_name: str
    column_name: str
    projection_column: str
    status: FacetStatus
    create_index: bool
    error: str
    reason: str
    promotion_started_at: _timestamp_pb2.Timestamp
    last_refresh_started_at: _timestamp_pb2.Timestamp
    last_refresh_succeeded_at: _timestamp_pb2.Timestamp
    disabled_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, facet_id: _Optional[str] = ..., key_name: _Optional[str] = ..., column_name: _Optional[str] = ..., projection_column: _Optional[str] = ..., status: _Optional[_Union[FacetStatus, str]] = ..., create_index: _Optional[bool] = ..., error: _Optional[str] = ..., reason: _Optional[str] = ..., promotion_started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_refresh_started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_refresh_succeeded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., disabled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PromoteFacetRequest(_message.Message):
    __slots__ = ("key_name", "column_name", "create_index")
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    COLUMN_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_INDEX_FIELD_NUMBER: _ClassVar[int]
    key_name: str
    column_name: str
    create_index: bool
    def __init__(self, key_name: _Optional[str] = ..., column_name: _Optional[str] = ..., create_index: _Optional[bool] = ...) -> None: ...

class PromoteFacetResponse(_message.Message):
    __slots__ = ("facet_id", "key_name", "column_name", "projection_column", "status", "create_index", "error", "reason", "promotion_started_at", "last_refresh_started_at", "last_refresh_succeeded_at", "disabled_at", "created_at", "updated_at", "job_id")
    FACET_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    COLUMN_NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECTION_COLUMN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATE_INDEX_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_REFRESH_STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_REFRESH_SUCCEEDED_AT_FIELD_NUMBER: _ClassVar[int]
    DISABLED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    facet_id: str
    key_name: str
    column_name: str
    projection_column: str
    status: FacetStatus
    create_index: bool
    error: str
    reason: str
    promotion_started_at: _timestamp_pb2.Timestamp
    last_refresh_started_at: _timestamp_pb2.Timestamp
    last_refresh_succeeded_at: _timestamp_pb2.Timestamp
    disabled_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    job_id: str
    def __init__(self, facet_id: _Optional[str] = ..., key_name: _Optional[str] = ..., column_name: _Optional[str] = ..., projection_column: _Optional[str] = ..., status: _Optional[_Union[FacetStatus, str]] = ..., create_index: _Optional[bool] = ..., error: _Optional[str] = ..., reason: _Optional[str] = ..., promotion_started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_refresh_started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_refresh_succeeded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., disabled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., job_id: _Optional[str] = ...) -> None: ...

class DisableFacetRequest(_message.Message):
    __slots__ = ("facet_id", "reason")
    FACET_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    facet_id: str
    reason: str
    def __init__(self, facet_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class OutstandingJob(_message.Message):
    __slots__ = ("job_id", "status")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    status: JobStatus
    def __init__(self, job_id: _Optional[str] = ..., status: _Optional[_Union[JobStatus, str]] = ...) -> None: ...

class DisableFacetResponse(_message.Message):
    __slots__ = ("facet_id", "key_name", "column_name", "projection_column", "status", "create_index", "error", "reason", "promotion_started_at", "last_refresh_started_at", "last_refresh_succeeded_at", "disabled_at", "created_at", "updated_at", "outstanding_backfill_jobs")
    FACET_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    COLUMN_NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECTION_COLUMN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATE_INDEX_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_REFRESH_STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_REFRESH_SUCCEEDED_AT_FIELD_NUMBER: _ClassVar[int]
    DISABLED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_BACKFILL_JOBS_FIELD_NUMBER: _ClassVar[int]
    facet_id: str
    key_name: str
    column_name: str
    projection_column: str
    status: FacetStatus
    create_index: bool
    error: str
    reason: str
    promotion_started_at: _timestamp_pb2.Timestamp
    last_refresh_started_at: _timestamp_pb2.Timestamp
    last_refresh_succeeded_at: _timestamp_pb2.Timestamp
    disabled_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    outstanding_backfill_jobs: _containers.RepeatedCompositeFieldContainer[OutstandingJob]
    def __init__(self, facet_id: _Optional[str] = ..., key_name: _Optional[str] = ..., column_name: _Optional[str] = ..., projection_column: _Optional[str] = ..., status: _Optional[_Union[FacetStatus, str]] = ..., create_index: _Optional[bool] = ..., error: _Optional[str] = ..., reason: _Optional[str] = ..., promotion_started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_refresh_started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_refresh_succeeded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., disabled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., outstanding_backfill_jobs: _Optional[_Iterable[_Union[OutstandingJob, _Mapping]]] = ...) -> None: ...

class ListFacetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListFacetsResponse(_message.Message):
    __slots__ = ("facets",)
    FACETS_FIELD_NUMBER: _ClassVar[int]
    facets: _containers.RepeatedCompositeFieldContainer[Facet]
    def __init__(self, facets: _Optional[_Iterable[_Union[Facet, _Mapping]]] = ...) -> None: ...

class TriggerFacetBackfillRequest(_message.Message):
    __slots__ = ("facet_id", "batch_size", "mode")
    FACET_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    facet_id: str
    batch_size: int
    mode: BackfillMode
    def __init__(self, facet_id: _Optional[str] = ..., batch_size: _Optional[int] = ..., mode: _Optional[_Union[BackfillMode, str]] = ...) -> None: ...

class TriggerFacetBackfillResponse(_message.Message):
    __slots__ = ("job_id", "status")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    status: JobStatus
    def __init__(self, job_id: _Optional[str] = ..., status: _Optional[_Union[JobStatus, str]] = ...) -> None: ...

class FacetBackfillStatusRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class FacetBackfillStatusResponse(_message.Message):
    __slots__ = ("job_id", "facet_id", "mode", "batch_size", "status", "rows_total", "rows_processed", "rows_updated", "failures", "batches", "error", "created_at", "started_at", "updated_at", "finished_at", "eta_seconds")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FACET_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ROWS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ROWS_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    ROWS_UPDATED_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    facet_id: str
    mode: BackfillMode
    batch_size: int
    status: JobStatus
    rows_total: int
    rows_processed: int
    rows_updated: int
    failures: int
    batches: int
    error: str
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    eta_seconds: float
    def __init__(self, job_id: _Optional[str] = ..., facet_id: _Optional[str] = ..., mode: _Optional[_Union[BackfillMode, str]] = ..., batch_size: _Optional[int] = ..., status: _Optional[_Union[JobStatus, str]] = ..., rows_total: _Optional[int] = ..., rows_processed: _Optional[int] = ..., rows_updated: _Optional[int] = ..., failures: _Optional[int] = ..., batches: _Optional[int] = ..., error: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., eta_seconds: _Optional[float] = ...) -> None: ...

class FacetCompliance(_message.Message):
    __slots__ = ("facet_id", "key_name", "column_name", "status", "rows_total", "rows_with_tag", "null_with_tag", "tag_absent", "drift")
    FACET_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    COLUMN_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ROWS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ROWS_WITH_TAG_FIELD_NUMBER: _ClassVar[int]
    NULL_WITH_TAG_FIELD_NUMBER: _ClassVar[int]
    TAG_ABSENT_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    facet_id: str
    key_name: str
    column_name: str
    status: FacetStatus
    rows_total: int
    rows_with_tag: int
    null_with_tag: int
    tag_absent: int
    drift: int
    def __init__(self, facet_id: _Optional[str] = ..., key_name: _Optional[str] = ..., column_name: _Optional[str] = ..., status: _Optional[_Union[FacetStatus, str]] = ..., rows_total: _Optional[int] = ..., rows_with_tag: _Optional[int] = ..., null_with_tag: _Optional[int] = ..., tag_absent: _Optional[int] = ..., drift: _Optional[int] = ...) -> None: ...

class ListFacetComplianceRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListFacetComplianceResponse(_message.Message):
    __slots__ = ("facets",)
    FACETS_FIELD_NUMBER: _ClassVar[int]
    facets: _containers.RepeatedCompositeFieldContainer[FacetCompliance]
    def __init__(self, facets: _Optional[_Iterable[_Union[FacetCompliance, _Mapping]]] = ...) -> None: ...
