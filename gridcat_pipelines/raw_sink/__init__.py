"""Immutable raw run directories (Parquet + metadata.json written last), via pyarrow.fs."""

from gridcat_pipelines.raw_sink.metadata import RawRunInfo, RunFile, RunMetadata
from gridcat_pipelines.raw_sink.sink import RawSink
from gridcat_pipelines.raw_sink.stats import StatsAccumulator, column_stats

__all__ = [
    "RawRunInfo",
    "RawSink",
    "RunFile",
    "RunMetadata",
    "StatsAccumulator",
    "column_stats",
]
