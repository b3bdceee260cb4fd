"""Files under an Iceberg table's location that no snapshot references, and their removal.

pyiceberg's ``expire_snapshots`` only drops snapshots from the table metadata: the data files,
manifests and manifest lists that only those snapshots used stay on storage. A load that lost
its commit race or was fenced out, or a process killed between writing and committing, leaves
files no snapshot ever referenced. Without a sweep, storage grows with every partition replace.

:func:`remove_unreferenced_files` is Iceberg's "remove orphan files" maintenance for one table:
it lists every file under the table's location, keeps each one that the current metadata file,
the metadata log, a kept snapshot (manifest list, manifests, data and delete files) or a
statistics file names, and deletes the rest that are older than the cut-off. The cut-off is the
safety margin for loads in flight: a file a loader has written and not committed yet is young,
and is kept. The loader holds up the other side: an overwrite staged more than
``RESTAGE_AFTER_SECONDS`` (30 minutes) before its commit writes its files again first, so with
the CLI's least cut-off (an hour) no commit names a swept file.

Listing and deleting go through the table's own ``PyArrowFileIO`` (local disk, S3, GCS, ADLS:
pyiceberg's file layer and its credentials).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pyarrow.fs import FileSelector, FileType
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.table import Table

from gridcat_pipelines.errors import failed_precondition


@dataclass(frozen=True)
class FilesRemoved:
    """What a sweep of one table removed (``dry_run``: would remove)."""

    files: int
    bytes: int

    def to_json(self) -> dict[str, int]:
        """``{"files": n, "bytes": b}``."""
        return {"files": self.files, "bytes": self.bytes}


def _file_io(table: Table) -> PyArrowFileIO:
    io = table.io
    if not isinstance(io, PyArrowFileIO):
        raise failed_precondition(
            f"removing unreferenced warehouse files needs pyiceberg's PyArrowFileIO, not {type(io).__name__}"
            " (set py-io-impl to pyiceberg.io.pyarrow.PyArrowFileIO in the catalog's properties)"
        )
    return io


def _fs_path(io: PyArrowFileIO, location: str) -> str:
    """A location as the file system names it (``/a/b`` for ``file:///a/b``, ``bucket/key`` for S3)."""
    return PyArrowFileIO.parse_location(location, io.properties)[2]


def referenced_files(table: Table, *, snapshots_from: datetime | None = None) -> set[str]:
    """Every file the table's metadata names, as file-system paths: metadata files (current and
    logged), statistics files, and each kept snapshot's manifest list, manifests and data/delete
    files (a manifest shared by several snapshots is read once). ``snapshots_from``: count only
    the snapshots an expiry at that cut-off keeps (the current one and those not older), to
    tell in a dry run what the expiry would free."""
    io = _file_io(table)
    metadata = table.metadata
    locations = {table.metadata_location, *(entry.metadata_file for entry in metadata.metadata_log)}
    locations.update(stats.statistics_path for stats in metadata.statistics)
    locations.update(stats.statistics_path for stats in metadata.partition_statistics)
    manifests_read: set[str] = set()
    for snapshot in table.snapshots():
        if (
            snapshots_from is not None
            and snapshot.snapshot_id != metadata.current_snapshot_id
            and snapshot.timestamp_ms < snapshots_from.timestamp() * 1000
        ):
            continue
        locations.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(io):
            if manifest.manifest_path in manifests_read:
                continue
            manifests_read.add(manifest.manifest_path)
            locations.add(manifest.manifest_path)
            locations.update(
                entry.data_file.file_path for entry in manifest.fetch_manifest_entry(io, discard_deleted=False)
            )
    return {_fs_path(io, location) for location in locations}


def remove_unreferenced_files(
    table: Table, older_than: datetime, *, dry_run: bool = False, snapshots_from: datetime | None = None
) -> FilesRemoved:
    """Delete the files under ``table``'s location that its metadata does not reference and
    that were last modified before ``older_than``; what was (``dry_run``: would be) deleted.
    ``snapshots_from`` (dry runs): as if the snapshots older than it were expired first."""
    io = _file_io(table)
    scheme, netloc, root = PyArrowFileIO.parse_location(table.location(), io.properties)
    fs = io.fs_by_scheme(scheme, netloc)
    referenced = referenced_files(table, snapshots_from=snapshots_from)
    files = removed_bytes = 0
    for info in fs.get_file_info(FileSelector(root, recursive=True, allow_not_found=True)):
        if info.type != FileType.File or info.path in referenced:
            continue
        if info.mtime is None or info.mtime >= older_than:
            continue  # young: a load may be about to commit it
        if not dry_run:
            try:
                fs.delete_file(info.path)
            except FileNotFoundError:  # another sweep got there first
                continue
        files += 1
        removed_bytes += info.size or 0
    return FilesRemoved(files, removed_bytes)
