"""The embedded warehouse: a hive-partitioned Parquet dataset per feed, via ``pyarrow.fs``.

``<root>/<query_name>/customer_id=<id>/logical_date=<YYYY-MM-DD>/data.parquet``; every row
carries the raw run it came from in a ``run_id`` column, and the file's key-value metadata
records the run, the row count and the state version the load was fenced with, so
``loaded_slice`` does not read the data.

A load is two steps (see ``gridcat_pipelines.warehouse.loader``): :meth:`ParquetWarehouse.stage_slice`
writes the new file under a temporary name, then :meth:`StagedParquetSlice.commit`, called
while the partition's state is held still, renames it over the old one (a single rename on
local disks; a server-side copy to the final object on object stores), unless the slice
already holds a higher state version. Readers see the old file or the new one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Protocol

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from gridcat_pipelines.errors import failed_precondition
from gridcat_pipelines.raw_sink.sink import RawSink

SLICE_FILE = "data.parquet"
RUN_ID_COLUMN = "run_id"
_META_RUN = b"gridcat.run_id"
_META_ROWS = b"gridcat.rows"
_META_VERSION = b"gridcat.state_version"


@dataclass(frozen=True)
class LoadedSlice:
    """What the warehouse holds for one partition."""

    run_id: str
    rows: int
    path: str
    state_version: int | None = None  # the state version the load was fenced with (None: unknown)


class StagedSlice(Protocol):
    """A slice written but not yet visible: commit it (fenced) or abort it."""

    def commit(self) -> LoadedSlice | None:
        """Make the slice the partition's slice; ``None`` (and nothing changed) when the
        partition's slice already holds a higher state version."""
        ...

    def abort(self) -> None:
        """Drop the staged slice; the partition keeps what it had."""
        ...


class WarehouseTarget(Protocol):
    """What a loader needs of a warehouse target (Parquet files or PostgreSQL)."""

    def stage_slice(
        self, query_name: str, customer_id: str, day: date, table: pa.Table, run_id: str, state_version: int
    ) -> StagedSlice:
        """Write one partition's new slice without making it visible."""
        ...

    def replace_slice(
        self,
        query_name: str,
        customer_id: str,
        day: date,
        table: pa.Table,
        run_id: str,
        state_version: int = 0,
    ) -> LoadedSlice:
        """Stage and commit at once, without a state fence (tools and tests)."""
        ...

    def loaded_slice(self, query_name: str, customer_id: str, day: date) -> LoadedSlice | None:
        """The run and row count one partition's slice holds."""
        ...

    def read_slice(self, query_name: str, customer_id: str, day: date) -> pa.Table:
        """The rows of one partition's slice."""
        ...


def commit_unfenced(staged: StagedSlice) -> LoadedSlice:
    """Commit ``staged`` with no state fence (``replace_slice``); a slice of a higher state
    version is still never replaced (``FAILED_PRECONDITION``)."""
    loaded = staged.commit()
    if loaded is None:
        raise failed_precondition("the partition's slice holds a higher state version; not replaced")
    return loaded


class UnfencedReplace:
    """``replace_slice`` for a target with ``stage_slice``: stage and commit at once."""

    def replace_slice(
        self,
        query_name: str,
        customer_id: str,
        day: date,
        table: pa.Table,
        run_id: str,
        state_version: int = 0,
    ) -> LoadedSlice:
        """Stage and commit at once, without a state fence; a slice of a higher state version
        is still never replaced (``FAILED_PRECONDITION``)."""
        return commit_unfenced(self.stage_slice(query_name, customer_id, day, table, run_id, state_version))


class ParquetWarehouse(UnfencedReplace):
    """One Parquet dataset per feed under ``root`` (a directory or an object-store URI)."""

    def __init__(self, root: str):
        # reuse the raw sink's resolution of paths and URIs to a pyarrow filesystem
        resolver = RawSink(root)
        self._fs: pafs.FileSystem = resolver.filesystem
        self._root = resolver.root.rstrip("/")

    def slice_dir(self, query_name: str, customer_id: str, day: date) -> str:
        """The directory holding one partition's slice."""
        return f"{self._root}/{query_name}/customer_id={customer_id}/logical_date={day.isoformat()}"

    def dataset_path(self, query_name: str) -> str:
        """The dataset directory of one feed (read it with ``pyarrow.dataset``, hive partitioning)."""
        return f"{self._root}/{query_name}"

    def slice_path(self, query_name: str, customer_id: str, day: date) -> str:
        """The file holding one partition's slice."""
        return f"{self.slice_dir(query_name, customer_id, day)}/{SLICE_FILE}"

    def stage_slice(
        self, query_name: str, customer_id: str, day: date, table: pa.Table, run_id: str, state_version: int
    ) -> StagedParquetSlice:
        """Write ``table`` (plus a ``run_id`` column) next to the partition's slice, not yet visible."""
        table = table.append_column(RUN_ID_COLUMN, pa.repeat(pa.scalar(run_id, pa.string()), table.num_rows))
        meta = dict(table.schema.metadata or {})
        meta.update(
            {
                _META_RUN: run_id.encode(),
                _META_ROWS: str(table.num_rows).encode(),
                _META_VERSION: str(int(state_version)).encode(),
            }
        )
        table = table.replace_schema_metadata(meta)
        folder = self.slice_dir(query_name, customer_id, day)
        self._fs.create_dir(folder, recursive=True)
        tmp = f"{folder}/.{SLICE_FILE}.tmp-{uuid.uuid4().hex}"
        staged = StagedParquetSlice(
            self, (query_name, customer_id, day), tmp, run_id, table.num_rows, int(state_version)
        )
        try:
            pq.write_table(table, tmp, filesystem=self._fs)
        except BaseException:
            staged.abort()
            raise
        return staged

    def loaded_slice(self, query_name: str, customer_id: str, day: date) -> LoadedSlice | None:
        """The run and row count the partition's slice holds, or ``None`` if never loaded."""
        path = self.slice_path(query_name, customer_id, day)
        try:
            with self._fs.open_input_file(path) as handle:
                meta = pq.ParquetFile(handle).schema_arrow.metadata or {}
        except (FileNotFoundError, OSError):
            return None
        version = meta.get(_META_VERSION)
        return LoadedSlice(
            run_id=meta.get(_META_RUN, b"").decode(),
            rows=int(meta.get(_META_ROWS, b"0")),
            path=path,
            state_version=None if version is None else int(version),
        )

    def read_slice(self, query_name: str, customer_id: str, day: date) -> pa.Table:
        """The rows of one partition's slice."""
        return pq.read_table(self.slice_path(query_name, customer_id, day), filesystem=self._fs)


class StagedParquetSlice:
    """A Parquet slice written under a temporary name (see :meth:`ParquetWarehouse.stage_slice`)."""

    def __init__(
        self,
        warehouse: ParquetWarehouse,
        slice_of: tuple[str, str, date],
        tmp: str,
        run_id: str,
        rows: int,
        state_version: int,
    ):
        self._warehouse, self._slice_of, self._tmp = warehouse, slice_of, tmp
        self.run_id, self.rows, self.state_version = run_id, rows, state_version

    def commit(self) -> LoadedSlice | None:
        """Rename the staged file over the slice, unless the slice holds a higher state version.

        The loader calls this while the partition's state is held still (``StateStore.hold``),
        which also keeps two commits of one slice from interleaving."""
        current = self._warehouse.loaded_slice(*self._slice_of)
        if current is not None and (current.state_version or 0) > self.state_version:
            self.abort()
            return None
        final = self._warehouse.slice_path(*self._slice_of)
        try:
            self._warehouse._fs.move(self._tmp, final)  # rename(2) locally: the old file or the new one
        except BaseException:
            self.abort()
            raise
        return LoadedSlice(run_id=self.run_id, rows=self.rows, path=final, state_version=self.state_version)

    def abort(self) -> None:
        """Delete the staged file (the slice keeps what it had)."""
        try:
            self._warehouse._fs.delete_file(self._tmp)
        except (FileNotFoundError, OSError):
            pass
