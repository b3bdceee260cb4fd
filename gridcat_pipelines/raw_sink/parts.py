"""Streaming Parquet part files: rows go out as they arrive, rolled every N rows.

Each file's sha256 and byte size are computed from the bytes as they are handed to the
filesystem (no second read). Small incoming batches are buffered up to one row group
(``ROW_GROUP_ROWS`` rows) so a source that yields 1,000-row batches does not produce
thousands of tiny row groups; memory is bounded by one row group, never the whole run.
A part file is opened as soon as its first rows arrive; after a failure :meth:`abort`
writes out the buffered rows and closes the file, so a crashed run keeps what it got.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from gridcat_pipelines.raw_sink.layout import part_file_name
from gridcat_pipelines.raw_sink.metadata import RunFile

ROW_GROUP_ROWS = 128 * 1024
COMPRESSION = "snappy"


class _HashingStream:
    """A write-only file object over a pyarrow output stream that hashes and counts bytes."""

    def __init__(self, stream: pa.NativeFile):
        self._stream = stream
        self._sha = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: Any) -> int:
        """Hash, count and forward ``data``."""
        view = memoryview(data)
        self._sha.update(view)
        self.size += view.nbytes
        self._stream.write(view)
        return view.nbytes

    def tell(self) -> int:
        """Bytes written so far."""
        return self.size

    def flush(self) -> None:
        """Nothing is buffered here; the stream flushes on close."""

    def writable(self) -> bool:
        """Always true."""
        return True

    def close(self) -> None:
        """Close the underlying stream (the file or object is complete after this)."""
        if not self.closed:
            self.closed = True
            self._stream.close()

    def hexdigest(self) -> str:
        """The sha256 of everything written."""
        return self._sha.hexdigest()


class PartFileWriter:
    """Writes one run's rows into ``part-00000.parquet``, ``part-00001.parquet``, ...

    ``on_file_closed(path)`` is called with each finished file's filesystem path (the sink
    uses it to fsync local files).
    """

    def __init__(
        self,
        fs: pafs.FileSystem,
        run_path: str,
        max_rows_per_file: int,
        on_file_closed: Callable[[str], None] | None = None,
    ):
        self._fs = fs
        self._run_path = run_path
        self._max_rows = max_rows_per_file
        self._on_file_closed = on_file_closed
        self._files: list[RunFile] = []
        self._stream: _HashingStream | None = None
        self._writer: pq.ParquetWriter | None = None
        self._file_rows = 0  # rows already written to the open file
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        """Append a batch (all batches must share one schema; the caller checks)."""
        offset = 0
        while offset < batch.num_rows:
            if self._writer is None:
                self._open(batch.schema)  # the file appears as soon as its first rows arrive
            room = self._max_rows - self._file_rows - self._pending_rows
            take = min(room, batch.num_rows - offset)
            self._pending.append(batch.slice(offset, take))
            self._pending_rows += take
            offset += take
            if self._pending_rows >= ROW_GROUP_ROWS:
                self._flush(batch.schema)
            if self._file_rows + self._pending_rows >= self._max_rows:
                self._flush(batch.schema)
                self._close_file()

    def finish(self, schema: pa.Schema) -> tuple[RunFile, ...]:
        """Flush and close; a run with no rows gets one empty file with ``schema``."""
        self._flush(schema)
        if not self._files and self._writer is None:
            self._open(schema)
        self._close_file()
        return tuple(self._files)

    def abort(self) -> None:
        """After a failure: write out buffered rows and close the open file (best effort).

        The run stays incomplete either way; what arrived is kept as evidence.
        """
        try:
            if self._writer is not None:
                self._flush(self._writer.schema)
                self._writer.close()
        except Exception:  # noqa: BLE001 - the original failure matters, not this one
            pass
        try:
            if self._stream is not None:
                self._stream.close()
        except Exception:  # noqa: BLE001
            pass
        self._writer = self._stream = None
        self._pending, self._pending_rows = [], 0

    def _open(self, schema: pa.Schema) -> None:
        path = f"{self._run_path}/{part_file_name(len(self._files))}"
        self._stream = _HashingStream(self._fs.open_output_stream(path))
        self._writer = pq.ParquetWriter(self._stream, schema, compression=COMPRESSION)
        self._file_rows = 0

    def _flush(self, schema: pa.Schema) -> None:
        if not self._pending_rows:
            self._pending = []
            return
        if self._writer is None:
            self._open(schema)
        assert self._writer is not None
        table = pa.Table.from_batches(self._pending, schema=schema)
        self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self._file_rows += self._pending_rows
        self._pending, self._pending_rows = [], 0

    def _close_file(self) -> None:
        if self._writer is None or self._stream is None:
            return
        self._writer.close()
        self._stream.close()
        name = part_file_name(len(self._files))
        self._files.append(
            RunFile(path=name, bytes=self._stream.size, rows=self._file_rows, sha256=self._stream.hexdigest())
        )
        self._writer = self._stream = None
        self._file_rows = 0
        if self._on_file_closed is not None:
            self._on_file_closed(f"{self._run_path}/{name}")
