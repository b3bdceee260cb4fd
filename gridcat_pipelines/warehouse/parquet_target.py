"""The embedded warehouse: a hive-partitioned Parquet dataset per feed, via ``pyarrow.fs``.

``<root>/<query_name>/customer_id=<id>/logical_date=<YYYY-MM-DD>/data.parquet``; every row
carries the raw run it came from in a ``run_id`` column, and the file's key-value metadata
records the run and row count so ``loaded_slice`` does not read the data. A partition's slice
is replaced atomically: the new file is written under a temporary name and renamed over the
old one (a single rename on local disks; one PUT of the final object on object stores).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Protocol

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from gridcat_pipelines.raw_sink.sink import RawSink

SLICE_FILE = "data.parquet"
RUN_ID_COLUMN = "run_id"
_META_RUN = b"gridcat.run_id"
_META_ROWS = b"gridcat.rows"


@dataclass(frozen=True)
class LoadedSlice:
    """What the warehouse holds for one partition."""

    run_id: str
    rows: int
    path: str


class WarehouseTarget(Protocol):
    """What a loader needs of a warehouse target (Parquet files or PostgreSQL)."""

    def replace_slice(
        self, query_name: str, customer_id: str, day: date, table: pa.Table, run_id: str
    ) -> LoadedSlice:
        """Replace one partition's slice atomically."""
        ...

    def loaded_slice(self, query_name: str, customer_id: str, day: date) -> LoadedSlice | None:
        """The run and row count one partition's slice holds."""
        ...

    def read_slice(self, query_name: str, customer_id: str, day: date) -> pa.Table:
        """The rows of one partition's slice."""
        ...


class ParquetWarehouse:
    """One Parquet dataset per feed under ``root`` (a directory or an object-store URI)."""

    def __init__(self, root: str):
        # reuse the raw sink's resolution of paths and URIs to a pyarrow filesystem
        resolver = RawSink(root)
        self._fs: pafs.FileSystem = resolver.filesystem
        self._root = resolver.root.rstrip("/")
        self._local = isinstance(self._fs, pafs.LocalFileSystem)

    def slice_dir(self, query_name: str, customer_id: str, day: date) -> str:
        """The directory holding one partition's slice."""
        return f"{self._root}/{query_name}/customer_id={customer_id}/logical_date={day.isoformat()}"

    def dataset_path(self, query_name: str) -> str:
        """The dataset directory of one feed (read it with ``pyarrow.dataset``, hive partitioning)."""
        return f"{self._root}/{query_name}"

    def replace_slice(
        self, query_name: str, customer_id: str, day: date, table: pa.Table, run_id: str
    ) -> LoadedSlice:
        """Replace the partition's slice with ``table`` (a ``run_id`` column is added)."""
        table = table.append_column(RUN_ID_COLUMN, pa.array([run_id] * table.num_rows, pa.string()))
        meta = dict(table.schema.metadata or {})
        meta.update({_META_RUN: run_id.encode(), _META_ROWS: str(table.num_rows).encode()})
        table = table.replace_schema_metadata(meta)
        folder = self.slice_dir(query_name, customer_id, day)
        self._fs.create_dir(folder, recursive=True)
        final = f"{folder}/{SLICE_FILE}"
        if self._local:
            tmp = f"{folder}/.{SLICE_FILE}.tmp-{uuid.uuid4().hex}"
            try:
                pq.write_table(table, tmp, filesystem=self._fs)
                self._fs.move(tmp, final)  # rename(2): readers see the old or the new file
            except BaseException:
                try:
                    self._fs.delete_file(tmp)
                except (FileNotFoundError, OSError):
                    pass
                raise
        else:
            pq.write_table(table, final, filesystem=self._fs)
        return LoadedSlice(run_id=run_id, rows=table.num_rows, path=final)

    def loaded_slice(self, query_name: str, customer_id: str, day: date) -> LoadedSlice | None:
        """The run and row count the partition's slice holds, or ``None`` if never loaded."""
        path = f"{self.slice_dir(query_name, customer_id, day)}/{SLICE_FILE}"
        try:
            with self._fs.open_input_file(path) as handle:
                meta = pq.ParquetFile(handle).schema_arrow.metadata or {}
        except (FileNotFoundError, OSError):
            return None
        return LoadedSlice(
            run_id=meta.get(_META_RUN, b"").decode(), rows=int(meta.get(_META_ROWS, b"0")), path=path
        )

    def read_slice(self, query_name: str, customer_id: str, day: date) -> pa.Table:
        """The rows of one partition's slice."""
        path = f"{self.slice_dir(query_name, customer_id, day)}/{SLICE_FILE}"
        return pq.read_table(path, filesystem=self._fs)
