"""The raw sink: immutable run directories on a local disk or an object store (pyarrow.fs).

A run is written once: data files stream out as batches arrive, then ``metadata.json`` is
committed last. A run without ``metadata.json`` is *incomplete* (a crashed or in-progress
pull); readers never treat it as data. No method changes a committed run; ``delete_run``
removes one whole run (retention).

Atomic commit of ``metadata.json``:

- Filesystems with an atomic rename (local disks, HDFS, pyarrow's mock filesystem, and a
  ``SubTreeFileSystem`` over one of those): write ``metadata.json.tmp-<random>``, then
  ``move`` it to ``metadata.json``. Locally the data files and the temporary file are
  fsynced before the rename and the directory after it, so a committed run survives a
  power cut. If the rename fails, the temporary file is deleted and the run stays
  incomplete.
- Object stores (S3, GCS, Azure, anything else): ``move`` is a copy plus a delete there, so
  the final key is written directly: the JSON is serialised in memory first, handed to one
  ``open_output_stream`` in a single ``write`` (it is far below the multipart threshold, so
  it is only buffered) and uploaded when the stream closes, as one PUT. An object becomes
  visible only when its upload completes, so readers see either no ``metadata.json`` or
  the whole of it; no temporary object is ever left behind.

Claiming a run directory is exclusive locally (``mkdir`` fails if it exists). On object
stores it is a check that nothing exists under the run prefix yet: run ids are fresh
UUIDv7s, so two writers only meet there when a caller reuses an id, which the check catches
unless both start within the same instant.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Sized
from contextlib import suppress
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from gridcat_pipelines.errors import (
    ALREADY_EXISTS,
    GridcatError,
    failed_precondition,
    invalid_argument,
    not_found,
)
from gridcat_pipelines.raw_sink.layout import (
    METADATA_FILE,
    PARTITION_LEVELS,
    check_key,
    metadata_tmp_name,
    parse_level,
    parse_partition_values,
    parse_run_dir_name,
    partition_dir,
    run_dir,
)
from gridcat_pipelines.raw_sink.metadata import RawRunInfo, RunFile, RunMetadata, schema_to_json
from gridcat_pipelines.raw_sink.parts import PartFileWriter
from gridcat_pipelines.raw_sink.stats import StatsAccumulator
from gridcat_pipelines.run_ids import new_run_id, parse_run_id, run_id_created_at
from gridcat_pipelines.state.keys import PartitionKey

__all__ = ["RawRunInfo", "RawSink", "RunFile", "RunMetadata"]

_HASH_CHUNK = 1 << 20
_ATOMIC_RENAME_FS = ("local", "mock", "hdfs")


def _atomic_rename(fs: pafs.FileSystem) -> bool:
    """Whether ``fs.move`` of a file is an atomic rename."""
    if isinstance(fs, pafs.SubTreeFileSystem):
        return _atomic_rename(fs.base_fs)
    return fs.type_name in _ATOMIC_RENAME_FS


def _os_path(fs: pafs.FileSystem, path: str) -> str | None:
    """The operating-system path of ``path`` if ``fs`` is the local disk (or a subtree of it)."""
    if isinstance(fs, pafs.LocalFileSystem):
        return path
    if isinstance(fs, pafs.SubTreeFileSystem):
        base = _os_path(fs.base_fs, fs.base_path.rstrip("/"))
        return None if base is None else f"{base}/{path.lstrip('/')}" if path else base
    return None


class RawSink:
    """Writes, lists, reads, verifies and deletes raw runs under one root.

    ``root`` is a local path (made absolute), a ``file://`` URI or an object-store URI such
    as ``s3://bucket/prefix`` or ``gs://bucket/prefix`` (resolved with
    ``pyarrow.fs.FileSystem.from_uri``). Pass ``filesystem`` to use a ready filesystem
    (e.g. a ``SubTreeFileSystem`` or a test double); ``root`` is then a path inside it.
    """

    def __init__(self, root: str, *, filesystem: pafs.FileSystem | None = None):
        if not isinstance(root, str):
            raise invalid_argument("raw sink root must be a string")
        self._uri_base: str | None = None
        if filesystem is not None:
            self._fs, path = filesystem, root
        elif "://" in root:
            try:
                self._fs, path = pafs.FileSystem.from_uri(root)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
                raise invalid_argument(f"raw sink root {root!r} is not a usable URI: {exc}") from None
            parts = urlsplit(root)
            self._uri_base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        else:
            if not root:
                raise invalid_argument("raw sink root must not be empty")
            self._fs, path = pafs.LocalFileSystem(), os.path.abspath(root)
        self._root = path.rstrip("/") if path not in ("/", "") else path
        self._atomic_rename = _atomic_rename(self._fs)

    @property
    def filesystem(self) -> pafs.FileSystem:
        """The pyarrow filesystem the runs live on."""
        return self._fs

    @property
    def root(self) -> str:
        """The root's path within :attr:`filesystem`."""
        return self._root

    def __repr__(self) -> str:
        return f"RawSink({self._fs.type_name}:{self._root!r})"

    # ----------------------------------------------------------------- paths

    def _path(self, relative: str) -> str:
        if not self._root:
            return relative
        return f"{self._root}{relative}" if self._root.endswith("/") else f"{self._root}/{relative}"

    def run_path(self, key: PartitionKey, run_id: str) -> str:
        """The run directory's path within :attr:`filesystem`."""
        return self._path(run_dir(key, run_id))

    def run_uri(self, key: PartitionKey, run_id: str) -> str:
        """The run directory as a URI: ``file://`` locally, else the store's own scheme."""
        return self._uri(self.run_path(key, run_id))

    def _uri(self, path: str) -> str:
        local = _os_path(self._fs, path)
        if local is not None:
            return "file://" + quote(local, safe="/=")  # '=' left readable; still a valid URI
        if self._uri_base is not None:
            return f"{self._uri_base}/{path[len(self._root) :].lstrip('/')}"
        return f"{self._fs.type_name}://{path.lstrip('/')}"

    # ----------------------------------------------------------------- write

    def write_run(
        self,
        key: PartitionKey,
        batches: Iterable[pa.RecordBatch],
        *,
        schema_version: str,
        run_id: str | None = None,
        gaql: str | None = None,
        source_name: str | None = None,
        max_rows_per_file: int = 1_000_000,
        schema: pa.Schema | None = None,
    ) -> RunMetadata:
        """Write a new immutable run of ``key`` from ``batches`` and commit it.

        Batches are written as they arrive (``pa.Table`` items are accepted and split into
        their batches); a new part file starts every ``max_rows_per_file`` rows. The first
        batch's schema is what is written and every later batch must have the same fields
        (``INVALID_ARGUMENT`` otherwise); ``schema`` is only used when there are no batches,
        to write the one empty file of an empty run (``INVALID_ARGUMENT`` if it is missing
        then). ``run_id`` defaults to a new UUIDv7; a run directory that already exists is
        ``ALREADY_EXISTS``. If iterating ``batches`` raises, the exception propagates
        unchanged and the run stays incomplete (no ``metadata.json``).
        """
        check_key(key)
        if not isinstance(schema_version, str) or not schema_version:
            raise invalid_argument("schema_version must be a non-empty string")
        for name, value in (("gaql", gaql), ("source_name", source_name)):
            if value is not None and not isinstance(value, str):
                raise invalid_argument(f"{name} must be a string or None")
        if type(max_rows_per_file) is not int or max_rows_per_file < 1:
            raise invalid_argument("max_rows_per_file must be a positive integer")
        if schema is not None and not isinstance(schema, pa.Schema):
            raise invalid_argument("schema must be a pyarrow.Schema or None")
        if schema is None and isinstance(batches, Sized) and len(batches) == 0:
            raise invalid_argument("an empty run needs `schema` (there are no batches to take it from)")
        run_id = new_run_id() if run_id is None else parse_run_id(run_id)
        run_path = self.run_path(key, run_id)
        self._claim(key, run_id, run_path)

        writer = PartFileWriter(self._fs, run_path, max_rows_per_file, self._fsync_file)
        run_schema: pa.Schema | None = None
        stats: StatsAccumulator | None = None
        try:
            for batch in _record_batches(batches):
                if run_schema is None:
                    run_schema, stats = batch.schema, StatsAccumulator(batch.schema)
                elif not batch.schema.equals(run_schema, check_metadata=False):
                    raise invalid_argument(
                        f"batch schema {schema_to_json(batch.schema)} differs from the run's "
                        f"schema {schema_to_json(run_schema)}; all batches of a run must share one schema"
                    )
                assert stats is not None
                stats.update(batch)
                writer.write(batch)
            extracted_at = datetime.now(UTC)
            if run_schema is None:
                if schema is None:
                    raise invalid_argument("an empty run needs `schema` (there were no batches to take it from)")
                run_schema, stats = schema, StatsAccumulator(schema)
            assert stats is not None
            files = writer.finish(run_schema)
        except BaseException:
            writer.abort()
            raise

        metadata = RunMetadata(
            run_id=run_id,
            source=key.source,
            customer_id=key.customer_id,
            query_name=key.query_name,
            logical_date=key.logical_date,
            schema_version=schema_version,
            record_count=sum(f.rows for f in files),
            extracted_at=extracted_at,
            files=files,
            column_stats=stats.result(),
            gaql=gaql,
            source_name=source_name,
            arrow_schema=schema_to_json(run_schema),
        )
        self._commit_metadata(run_path, metadata.to_json_bytes())
        return metadata

    def _claim(self, key: PartitionKey, run_id: str, run_path: str) -> None:
        """Create the run directory, refusing one that exists (runs are immutable)."""
        exists = GridcatError(ALREADY_EXISTS, f"run {run_id} of {key} already exists; runs are immutable")
        local = _os_path(self._fs, run_path)
        if local is not None:
            self._fs.create_dir(run_path.rsplit("/", 1)[0], recursive=True)
            try:
                os.mkdir(local)
            except FileExistsError:
                raise exists from None
            return
        if self._fs.get_file_info(run_path).type != pafs.FileType.NotFound:
            raise exists
        self._fs.create_dir(run_path, recursive=True)

    def _commit_metadata(self, run_path: str, payload: bytes) -> None:
        """Make ``metadata.json`` appear whole or not at all (see the module docstring)."""
        final = f"{run_path}/{METADATA_FILE}"
        if not self._atomic_rename:
            with self._fs.open_output_stream(final) as out:
                out.write(payload)
            return
        tmp = f"{run_path}/{metadata_tmp_name()}"
        try:
            with self._fs.open_output_stream(tmp) as out:
                out.write(payload)
            self._fsync_file(tmp)
            self._rename(tmp, final)
        except BaseException:
            with suppress(Exception):
                self._fs.delete_file(tmp)
            raise
        self._fsync_dir(run_path)

    def _rename(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst`` (one call, so tests can make it fail)."""
        self._fs.move(src, dst)

    def _fsync_file(self, path: str) -> None:
        local = _os_path(self._fs, path)
        if local is None:
            return
        fd = os.open(local, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _fsync_dir(self, path: str) -> None:
        local = _os_path(self._fs, path)
        if local is None:
            return
        with suppress(OSError):  # not every platform can fsync a directory
            self._fsync_file(path)

    # ----------------------------------------------------------------- list

    def list_runs(self, key: PartitionKey, *, include_incomplete: bool = False) -> list[RawRunInfo]:
        """The runs of ``key`` in run id (= creation time) order; complete ones only by default.

        Directories whose name is not ``run_id=<canonical UUIDv7>`` are ignored.
        """
        return self._runs_in(key, self._path(partition_dir(key)), include_incomplete)

    def iter_all_runs(self, include_incomplete: bool = False) -> Iterator[RawRunInfo]:
        """Every run under the root, partition by partition in path order (for retention).

        Walks one directory level at a time (no listing of data files); directories that
        do not fit the layout are skipped.
        """

        def walk(path: str, depth: int, values: tuple[str, ...]) -> Iterator[RawRunInfo]:
            """Runs below ``path``, the directory at ``depth`` whose level values are ``values``."""
            if depth == len(PARTITION_LEVELS):
                key = parse_partition_values(values)  # type: ignore[arg-type]
                if key is not None:
                    yield from self._runs_in(key, path, include_incomplete)
                return
            for info in self._subdirs(path):
                value = parse_level(info.base_name, PARTITION_LEVELS[depth])
                if value is not None:
                    yield from walk(info.path, depth + 1, values + (value,))

        yield from walk(self._root, 0, ())

    def _subdirs(self, path: str) -> list[pafs.FileInfo]:
        infos = self._fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        return sorted((i for i in infos if i.type == pafs.FileType.Directory), key=lambda i: i.base_name)

    def _runs_in(self, key: PartitionKey, path: str, include_incomplete: bool) -> list[RawRunInfo]:
        found = []
        for info in self._subdirs(path):
            run_id = parse_run_dir_name(info.base_name)
            if run_id is not None:
                found.append((run_id, info.path))
        found.sort()
        markers = self._fs.get_file_info([f"{p}/{METADATA_FILE}" for _, p in found]) if found else []
        runs = [
            RawRunInfo(
                key=key,
                run_id=run_id,
                uri=self._uri(run_path),
                complete=marker.type == pafs.FileType.File,
                created_at=run_id_created_at(run_id),
            )
            for (run_id, run_path), marker in zip(found, markers)
        ]
        return runs if include_incomplete else [r for r in runs if r.complete]

    # ----------------------------------------------------------------- read

    def read_metadata(self, key: PartitionKey, run_id: str) -> RunMetadata:
        """The committed metadata of a run.

        ``NOT_FOUND`` if the run directory does not exist; ``FAILED_PRECONDITION`` if the run
        is incomplete (no ``metadata.json``) or its ``metadata.json`` is corrupt or describes
        another run.
        """
        run_id = parse_run_id(run_id)
        run_path = self.run_path(key, run_id)
        run_info, meta_info = self._fs.get_file_info([run_path, f"{run_path}/{METADATA_FILE}"])
        if run_info.type == pafs.FileType.NotFound:
            raise not_found(f"run {run_id} of {key} does not exist")
        if meta_info.type != pafs.FileType.File:
            raise failed_precondition(f"run {run_id} of {key} is incomplete: no {METADATA_FILE}")
        with self._fs.open_input_stream(meta_info.path) as stream:
            payload = stream.read()
        try:
            metadata = RunMetadata.from_json(payload)
        except GridcatError as exc:
            raise failed_precondition(f"run {run_id} of {key} has a corrupt {METADATA_FILE}: {exc.message}") from None
        if metadata.key != key or metadata.run_id != run_id:
            raise failed_precondition(
                f"{METADATA_FILE} of run {run_id} of {key} describes run {metadata.run_id} of {metadata.key}"
            )
        return metadata

    def _file_paths(self, metadata: RunMetadata) -> list[str]:
        run_path = self.run_path(metadata.key, metadata.run_id)
        return [f"{run_path}/{f.path}" for f in metadata.files]

    def read_table(self, metadata: RunMetadata) -> pa.Table:
        """The run's rows: exactly the files ``metadata`` lists, in order (no directory glob).

        ``FAILED_PRECONDITION`` if a listed file is missing or unreadable; content checks
        (sizes, checksums) are :meth:`verify_files`'s job.
        """
        tables = []
        for path in self._file_paths(metadata):
            try:
                with self._fs.open_input_file(path) as source:
                    tables.append(pq.read_table(source))
            except FileNotFoundError:
                raise failed_precondition(f"run {metadata.run_id}: data file {path} is missing") from None
            except (pa.ArrowInvalid, OSError) as exc:
                raise failed_precondition(f"run {metadata.run_id}: cannot read {path}: {exc}") from None
        if not tables:
            raise failed_precondition(f"run {metadata.run_id} lists no data files")
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)

    def verify_files(self, metadata: RunMetadata) -> list[str]:
        """Problems with the run's data files, as sentences; empty when all is well.

        Checks that each listed file exists with the recorded size and sha256 (read in 1 MiB
        chunks), that its Parquet footer has the recorded row count, and that the files'
        rows add up to ``record_count``.
        """
        problems = []
        paths = self._file_paths(metadata)
        infos = self._fs.get_file_info(paths) if paths else []
        if not paths:
            problems.append("metadata lists no data files")
        for entry, path, info in zip(metadata.files, paths, infos):
            if info.type == pafs.FileType.NotFound:
                problems.append(f"{entry.path}: missing")
                continue
            if info.type != pafs.FileType.File:
                problems.append(f"{entry.path}: not a file")
                continue
            if info.size != entry.bytes:
                problems.append(f"{entry.path}: {info.size} bytes, metadata says {entry.bytes}")
                continue
            digest = self._sha256(path)
            if digest != entry.sha256:
                problems.append(f"{entry.path}: sha256 {digest} does not match metadata's {entry.sha256}")
                continue
            try:
                with self._fs.open_input_file(path) as source:
                    rows = pq.read_metadata(source).num_rows
            except (pa.ArrowInvalid, OSError) as exc:
                problems.append(f"{entry.path}: not a readable Parquet file ({exc})")
                continue
            if rows != entry.rows:
                problems.append(f"{entry.path}: {rows} rows, metadata says {entry.rows}")
        listed = sum(f.rows for f in metadata.files)
        if listed != metadata.record_count:
            problems.append(f"files hold {listed} rows in total, record_count says {metadata.record_count}")
        return problems

    def _sha256(self, path: str) -> str:
        sha = hashlib.sha256()
        with self._fs.open_input_stream(path) as stream:
            while chunk := stream.read(_HASH_CHUNK):
                sha.update(chunk)
        return sha.hexdigest()

    # ----------------------------------------------------------------- retention

    def delete_run(self, key: PartitionKey, run_id: str) -> None:
        """Delete a whole run directory (retention); ``NOT_FOUND`` if there is none.

        ``metadata.json`` goes first, so a delete cut short leaves an incomplete run, never a
        complete-looking run with missing data files. Empty parent directories are kept (a
        writer may be creating a new run next to it).
        """
        run_id = parse_run_id(run_id)
        run_path = self.run_path(key, run_id)
        if self._fs.get_file_info(run_path).type == pafs.FileType.NotFound:
            raise not_found(f"run {run_id} of {key} does not exist")
        with suppress(FileNotFoundError):
            self._fs.delete_file(f"{run_path}/{METADATA_FILE}")
        try:
            self._fs.delete_dir(run_path)
        except FileNotFoundError:  # another deleter (a concurrent retention) got there first
            raise not_found(f"run {run_id} of {key} does not exist") from None


def _record_batches(items: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The items as record batches (a ``pa.Table`` item yields its batches)."""
    for item in items:
        if isinstance(item, pa.RecordBatch):
            yield item
        elif isinstance(item, pa.Table):
            yield from item.to_batches()
        else:
            raise invalid_argument(f"expected pyarrow RecordBatch items, got {type(item).__name__}")
