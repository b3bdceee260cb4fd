"""The warehouse as Apache Iceberg tables (pyiceberg): one table per feed in namespace ``google_ads``.

Catalog: pyiceberg's own configuration of a catalog named ``gridcat`` (``~/.pyiceberg.yaml`` or
``PYICEBERG_CATALOG__GRIDCAT__*``: a PostgreSQL SQL catalog or a REST catalog in production,
warehouse local or on object storage through pyiceberg's file IO). With none configured:
a SQL catalog on SQLite at ``$GRIDCAT_HOME/iceberg/catalog.db``, warehouse
``$GRIDCAT_HOME/iceberg/warehouse``.

Table ``google_ads.<feed>``: the feed's columns, ``run_id`` (the raw run each row came from) and
``logical_date``, partitioned by ``identity(customer_id)`` (the feed's own column, the account)
and ``identity(logical_date)``. ``run_id`` keeps full column metrics, so each data file's
manifest entry names the run it holds.

One partition replace is ONE Iceberg commit (see ``gridcat_pipelines.warehouse.loader``):
:meth:`IcebergWarehouse.stage_slice` opens a transaction and writes the new data files with an
overwrite filtered to the partition; :meth:`StagedIcebergSlice.commit`, called while the
partition's state is held still, commits it. Its snapshot summary carries ``gridcat.customer_id``,
``gridcat.logical_date``, ``gridcat.run_id``, ``gridcat.state_version`` and ``gridcat.rows``.
A reader sees the table before the commit or after it. A commit that loses a race with
another loader (``CommitFailedException``: another partition of the same table committed
first, or the same partition in between: ``ValidationException``) is staged again on the new
table metadata and retried, up to ``commit_attempts`` times. A slice whose
latest snapshot carries a higher state version is never replaced (the commit answers
``None``).

What a partition holds is read from metadata, never from data files: the run and the row
count from the partition's data files' manifest entries (``run_id`` bounds, record counts),
the state version from the newest snapshot summary of the partition that retention kept. An
empty slice has no data file: it is known from its snapshot summary until retention expires
that snapshot, after which it reads as not loaded and reconcile loads it again (cheap, and it
writes a new summary).
"""

from __future__ import annotations

import json
import random
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    TableAlreadyExistsError,
    ValidationException,
)
from pyiceberg.expressions import And, EqualTo, Or
from pyiceberg.manifest import DataFile
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema, assign_fresh_schema_ids
from pyiceberg.table import Table, Transaction
from pyiceberg.transforms import IdentityTransform

from gridcat_pipelines.errors import invalid_argument, not_found
from gridcat_pipelines.warehouse.iceberg_files import FilesRemoved, remove_unreferenced_files
from gridcat_pipelines.warehouse.parquet_target import RUN_ID_COLUMN, LoadedSlice, UnfencedReplace
from gridcat_pipelines.warehouse.postgres_target import feed_name

# pyiceberg warns when an overwrite's filter matches no rows: the first load of every partition
warnings.filterwarnings("ignore", message="Delete operation did not match any records", module="pyiceberg")

CATALOG_NAME = "gridcat"
NAMESPACE = "google_ads"
CUSTOMER_COLUMN = "customer_id"
DATE_COLUMN = "logical_date"
SUMMARY = {
    "customer": "gridcat.customer_id",
    "day": "gridcat.logical_date",
    "run": "gridcat.run_id",
    "version": "gridcat.state_version",
    "rows": "gridcat.rows",
    "slices": "gridcat.slices",
}
# A staged overwrite older than this is written again before it commits: the sweep of
# unreferenced files (gridcat retention) may delete files older than an hour, and the files of
# an overwrite that has not committed yet are unreferenced.
RESTAGE_AFTER_SECONDS = 30 * 60
_clock = time.monotonic

TABLE_PROPERTIES = {
    f"write.metadata.metrics.column.{RUN_ID_COLUMN}": "full",  # the run in every file's manifest entry
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
}


def default_catalog_properties(home: Path) -> dict[str, str]:
    """The embedded catalog: SQL on SQLite under ``home/iceberg``."""
    root = home / "iceberg"
    (root / "warehouse").mkdir(parents=True, exist_ok=True)
    return {"type": "sql", "uri": f"sqlite:///{root / 'catalog.db'}", "warehouse": f"file://{root / 'warehouse'}"}


def open_catalog(home: Path) -> Catalog:
    """The ``gridcat`` catalog as pyiceberg's configuration gives it, else the embedded one."""
    from pyiceberg.catalog import _ENV_CONFIG  # pyiceberg's reading of ~/.pyiceberg.yaml and PYICEBERG_*

    if _ENV_CONFIG.get_catalog_config(CATALOG_NAME):
        return load_catalog(CATALOG_NAME)
    return load_catalog(CATALOG_NAME, **default_catalog_properties(home))


@dataclass(frozen=True)
class SliceRecord:
    """A partition as its newest kept snapshot summary describes it."""

    run_id: str
    state_version: int
    rows: int
    snapshot_id: int


class IcebergWarehouse(UnfencedReplace):
    """One Iceberg table per feed in the ``google_ads`` namespace of ``catalog``."""

    def __init__(self, catalog: Catalog, *, commit_attempts: int = 10):
        self.catalog = catalog
        self.commit_attempts = commit_attempts

    @classmethod
    def open(cls, home: Path) -> IcebergWarehouse:
        """The warehouse on the configured (or embedded) ``gridcat`` catalog."""
        return cls(open_catalog(home))

    def describe(self, query_name: str, customer_id: str, day: date) -> str:
        """A readable locator of one slice, used as the slice's ``path``."""
        return f"iceberg://{CATALOG_NAME}/{NAMESPACE}.{query_name}?{CUSTOMER_COLUMN}={customer_id}&{DATE_COLUMN}={day}"

    # ------------------------------------------------------------------ tables

    def table(self, query_name: str) -> Table | None:
        """The feed's table, or ``None`` before its first load."""
        try:
            return self.catalog.load_table((NAMESPACE, feed_name(query_name)))
        except Exception as exc:  # NoSuchTableError, NoSuchNamespaceError
            if type(exc).__name__.startswith("NoSuch"):
                return None
            raise

    def ensure_table(self, query_name: str, schema: pa.Schema) -> Table:
        """The feed's table, created partitioned on the first load; columns a newer schema adds
        are added (``union_by_name``). Loaders racing to create the namespace, the table or the
        same new columns all get the one table."""
        feed = feed_name(query_name)
        table = self.table(feed)
        if table is None:
            self._create_namespace()
            table = self._create_table(feed, schema)
        for attempt in range(1, self.commit_attempts + 1):
            known = {field.name for field in table.schema().fields}
            missing = [name for name in schema.names if name not in known]
            if not missing:
                return table
            try:
                with table.update_schema() as update:
                    update.union_by_name(schema)
            except CommitFailedException:  # another loader evolved the schema first: look again
                if attempt == self.commit_attempts:
                    raise
            table = self.catalog.load_table((NAMESPACE, feed))
        return table

    def _create_namespace(self) -> None:
        """Create ``google_ads`` unless it exists. A SQL catalog checks, then inserts: a
        concurrent first load can insert in between (an ``IntegrityError``), which is no error
        once the namespace is there."""
        try:
            self.catalog.create_namespace(NAMESPACE)
        except NamespaceAlreadyExistsError:
            pass
        except Exception:
            if not self.catalog.namespace_exists(NAMESPACE):
                raise

    def _create_table(self, feed: str, schema: pa.Schema) -> Table:
        """Create the feed's table partitioned by account and day; the table a concurrent first
        load created wins."""
        iceberg_schema, spec = table_layout(schema)
        try:
            self.catalog.create_table(
                (NAMESPACE, feed), schema=iceberg_schema, partition_spec=spec, properties=TABLE_PROPERTIES
            )
        except TableAlreadyExistsError:
            pass
        except Exception:
            if self.table(feed) is None:
                raise
        return self.catalog.load_table((NAMESPACE, feed))

    # ------------------------------------------------------------------ writes

    def stage_slice(
        self, query_name: str, customer_id: str, day: date, table: pa.Table, run_id: str, state_version: int
    ) -> StagedIcebergSlice:
        """Write the partition's new data files in an open transaction (not visible yet)."""
        batch = self.stage_slices(query_name, [(customer_id, day, table, run_id, state_version)])
        return StagedIcebergSlice(batch, run_id, table.num_rows, int(state_version))

    def stage_slices(self, query_name: str, slices: list[tuple[str, date, pa.Table, str, int]]) -> StagedIcebergSlices:
        """Write the new data files of several partitions ``(customer_id, day, table, run_id,
        state_version)`` of one table in one open transaction: one commit for all of them."""
        staged = [
            _Slice(customer_id, day, slice_rows(table, customer_id, day, run_id), run_id, int(version))
            for customer_id, day, table, run_id, version in slices
        ]
        schema = staged[0].rows.schema if len(staged) == 1 else pa.unify_schemas([s.rows.schema for s in staged])
        batch = StagedIcebergSlices(self, query_name, staged)
        batch.prepare(self.ensure_table(query_name, schema))
        return batch

    def _tables(self, query_names: list[str] | None = None) -> Iterator[tuple[str, Table]]:
        """``(feed, table)`` of every table in the namespace (or of ``query_names``)."""
        try:
            identifiers = sorted(self.catalog.list_tables(NAMESPACE))
        except Exception as exc:
            if type(exc).__name__.startswith("NoSuch"):
                return
            raise
        for identifier in identifiers:
            name = identifier[-1]
            if query_names is None or name in query_names:
                yield name, self.catalog.load_table(identifier)

    def expire_snapshots(
        self, older_than: datetime, *, query_names: list[str] | None = None, dry_run: bool = False
    ) -> dict[str, int]:
        """Expire every table's snapshots older than ``older_than`` (the current snapshot of each
        table always stays); per table, how many were (``dry_run``: would be) expired. The files
        only they used stay until :meth:`remove_unreferenced_files`."""
        expired: dict[str, int] = {}
        for name, table in self._tables(query_names):
            current = table.metadata.current_snapshot_id
            old = [s.snapshot_id for s in table.snapshots() if s.timestamp_ms < older_than.timestamp() * 1000]
            old = [s for s in old if s != current]
            if old and not dry_run:
                table.maintenance.expire_snapshots().by_ids(old).commit()
            expired[name] = len(old)
        return expired

    def remove_unreferenced_files(
        self,
        older_than: datetime,
        *,
        query_names: list[str] | None = None,
        dry_run: bool = False,
        snapshots_from: datetime | None = None,
    ) -> dict[str, FilesRemoved]:
        """Per table, delete the files no kept snapshot or metadata file references (those of
        expired snapshots, of lost or fenced-out commits, of killed loads) last modified before
        ``older_than``; what was (``dry_run``: would be) deleted. ``snapshots_from``: count as
        if the snapshots older than it were expired (a dry run of expiry then sweep). See
        ``iceberg_files``."""
        return {
            name: remove_unreferenced_files(table, older_than, dry_run=dry_run, snapshots_from=snapshots_from)
            for name, table in self._tables(query_names)
        }

    # ------------------------------------------------------------------- reads

    def describe_tables(self, latest: int = 3) -> list[dict[str, Any]]:
        """Each table: its name, location, snapshot count and its ``latest`` snapshots (id,
        time, operation, and the partition, run and state version a load wrote there)."""
        out = []
        for name, table in self._tables():
            snapshots = sorted(table.snapshots(), key=lambda s: s.timestamp_ms)
            out.append(
                {
                    "table": f"{NAMESPACE}.{name}",
                    "location": table.location(),
                    "snapshots": len(snapshots),
                    "latest": [
                        {
                            "snapshot_id": s.snapshot_id,
                            "at": datetime.fromtimestamp(s.timestamp_ms / 1000, UTC).isoformat(),
                            "operation": s.summary.operation.value if s.summary else None,
                            **{
                                key: (s.summary.additional_properties if s.summary else {}).get(prop)
                                for key, prop in (
                                    ("customer_id", SUMMARY["customer"]),
                                    ("logical_date", SUMMARY["day"]),
                                    ("run_id", SUMMARY["run"]),
                                    ("state_version", SUMMARY["version"]),
                                )
                            },
                        }
                        for s in reversed(snapshots[-latest:])
                    ],
                }
            )
        return out

    def loaded_slice(self, query_name: str, customer_id: str, day: date) -> LoadedSlice | None:
        """The run, row count and state version the partition holds, from metadata only."""
        table = self.table(query_name)
        if table is None:
            return None
        record = slice_records(table).get((customer_id, day.isoformat()))
        return _loaded(partition_files(table, customer_id, day), record, self.describe(query_name, customer_id, day))

    def loaded_slices(self, query_name: str, partitions: list[tuple[str, date]]) -> dict[tuple[str, date], LoadedSlice]:
        """:meth:`loaded_slice` of many partitions of one feed, from one read of the table's
        metadata: every current data file's manifest entry once, the kept snapshots once.
        Partitions with nothing loaded are left out."""
        table = self.table(query_name)
        if table is None or not partitions:
            return {}
        wanted = {(str(int(c)), d.isoformat()): (c, d) for c, d in partitions}
        files: dict[tuple[str, str], list[tuple[str, int]]] = {}
        epoch = date(1970, 1, 1).toordinal()
        for data_file, run, rows in file_runs(table):
            customer, days = data_file.partition[0], data_file.partition[1]
            key = (str(customer), date.fromordinal(epoch + int(days)).isoformat())
            if key in wanted:
                files.setdefault(key, []).append((run, rows))
        records = slice_records(table)
        out: dict[tuple[str, date], LoadedSlice] = {}
        for key, (customer_id, day) in wanted.items():
            loaded = _loaded(
                files.get(key, []), records.get((customer_id, key[1])), self.describe(query_name, customer_id, day)
            )
            if loaded is not None:
                out[(customer_id, day)] = loaded
        return out

    def read_slice(self, query_name: str, customer_id: str, day: date) -> pa.Table:
        """The rows of one partition's slice: the feed's columns and ``run_id``."""
        table = self.table(query_name)
        if table is None:
            raise not_found(f"the warehouse has no table {NAMESPACE}.{query_name}")
        rows = table.scan(row_filter=_partition_filter(customer_id, day)).to_arrow()
        return rows.drop_columns([DATE_COLUMN])


def table_layout(schema: pa.Schema) -> tuple[Schema, PartitionSpec]:
    """The Iceberg schema of a slice's Arrow schema (field ids 1..n) and its partition spec:
    ``identity(customer_id)``, ``identity(logical_date)``."""
    iceberg_schema = assign_fresh_schema_ids(Catalog._convert_schema_if_needed(schema))
    fields = [
        PartitionField(
            source_id=iceberg_schema.find_field(name).field_id,
            field_id=1000 + i,
            transform=IdentityTransform(),
            name=name,
        )
        for i, name in enumerate((CUSTOMER_COLUMN, DATE_COLUMN))
    ]
    return iceberg_schema, PartitionSpec(*fields)


def _partition_filter(customer_id: str, day: date):
    return And(EqualTo(CUSTOMER_COLUMN, int(customer_id)), EqualTo(DATE_COLUMN, day.isoformat()))


def slice_rows(table: pa.Table, customer_id: str, day: date, run_id: str) -> pa.Table:
    """The slice as the Iceberg table stores it: the feed's columns, ``run_id``, ``logical_date``
    (and ``customer_id`` when the feed has no such column). Every row must belong to the
    partition's account (``INVALID_ARGUMENT`` otherwise)."""
    for reserved in (RUN_ID_COLUMN, DATE_COLUMN):
        if reserved in table.column_names:
            raise invalid_argument(f"column {reserved!r} is reserved by the warehouse")
    if CUSTOMER_COLUMN not in table.column_names:
        table = table.append_column(CUSTOMER_COLUMN, pa.repeat(pa.scalar(int(customer_id), pa.int64()), table.num_rows))
    customers = table.column(CUSTOMER_COLUMN)
    if not pa.types.is_integer(customers.type):
        raise invalid_argument(f"column {CUSTOMER_COLUMN!r} must be an integer column, not {customers.type}")
    if table.num_rows and not pc.all(pc.equal(customers, int(customer_id))).as_py():
        raise invalid_argument(f"rows of another account than {customer_id} in its slice")
    n = table.num_rows
    table = table.append_column(RUN_ID_COLUMN, pa.repeat(pa.scalar(run_id, pa.string()), n))
    return table.append_column(DATE_COLUMN, pa.repeat(pa.scalar(day, pa.date32()), n))


def _loaded(files: list[tuple[str, int]], record: SliceRecord | None, path: str) -> LoadedSlice | None:
    """What a partition holds, from its data files' ``(run_id, rows)`` and its newest summary."""
    if files:
        runs = {run for run, _ in files}
        run = runs.pop() if len(runs) == 1 else ""
        version = record.state_version if record is not None and record.run_id == run else None
        return LoadedSlice(run_id=run, rows=sum(n for _, n in files), path=path, state_version=version)
    if record is not None and record.rows == 0:
        return LoadedSlice(run_id=record.run_id, rows=0, path=path, state_version=record.state_version)
    return None


def partition_files(table: Table, customer_id: str, day: date) -> list[tuple[str, int]]:
    """``(run_id, record_count)`` of each current data file of the partition, from the manifests."""
    return [(run, rows) for _, run, rows in file_runs(table, _partition_filter(customer_id, day))]


def file_runs(table: Table, row_filter: Any = None) -> Iterator[tuple[DataFile, str, int]]:
    """Each current data file (those ``row_filter`` may match) with its run and row count, from
    the manifests: the run is the file's ``run_id`` lower bound when it equals the upper bound
    (else ``""``: the file mixes runs)."""
    field_id = table.schema().find_field(RUN_ID_COLUMN).field_id
    scan = table.scan() if row_filter is None else table.scan(row_filter=row_filter)
    for task in scan.plan_files():
        data_file = task.file
        lower = (data_file.lower_bounds or {}).get(field_id, b"")
        upper = (data_file.upper_bounds or {}).get(field_id, b"")
        yield data_file, (lower.decode() if lower == upper else ""), data_file.record_count


def slice_records(table: Table) -> dict[tuple[str, str], SliceRecord]:
    """Per ``(customer_id, logical_date)``, the newest kept snapshot summary that loaded it
    (walking the current snapshot's ancestry, newest first)."""
    records: dict[tuple[str, str], SliceRecord] = {}
    by_id = {s.snapshot_id: s for s in table.snapshots()}
    snapshot = table.current_snapshot()
    seen: set[int] = set()
    while snapshot is not None and snapshot.snapshot_id not in seen:
        seen.add(snapshot.snapshot_id)
        props: dict[str, Any] = dict(snapshot.summary.additional_properties) if snapshot.summary else {}
        for entry in json.loads(props.get(SUMMARY["slices"], "[]")):
            customer, day, run, version, rows = entry
            records.setdefault((customer, day), SliceRecord(run, int(version), int(rows), snapshot.snapshot_id))
        if SUMMARY["customer"] in props and SUMMARY["day"] in props:
            key = (props[SUMMARY["customer"]], props[SUMMARY["day"]])
            records.setdefault(
                key,
                SliceRecord(
                    props[SUMMARY["run"]],
                    int(props[SUMMARY["version"]]),
                    int(props[SUMMARY["rows"]]),
                    snapshot.snapshot_id,
                ),
            )
        snapshot = by_id.get(snapshot.parent_snapshot_id) if snapshot.parent_snapshot_id else None
    return records


@dataclass(frozen=True)
class _Slice:
    customer_id: str
    day: date
    rows: pa.Table
    run_id: str
    state_version: int


class StagedIcebergSlices:
    """One overwrite of one or more partitions of a table in an open pyiceberg transaction
    (see :meth:`IcebergWarehouse.stage_slices`): one commit for all of them."""

    def __init__(self, warehouse: IcebergWarehouse, query_name: str, slices: list[_Slice]):
        self._warehouse, self._query_name, self._slices = warehouse, query_name, slices
        self._rows = (
            slices[0].rows
            if len(slices) == 1
            else pa.concat_tables([s.rows for s in slices], promote_options="default")
        )
        self._txn: Transaction | None = None
        self._table: Table | None = None
        self._prepared_at = 0.0

    def prepare(self, table: Table) -> None:
        """Write the data files and stage the overwrite on ``table``'s current metadata."""
        self._table = table
        self._prepared_at = _clock()
        self._txn = table.transaction()
        filters = [_partition_filter(s.customer_id, s.day) for s in self._slices]
        self._txn.overwrite(
            self._rows,
            overwrite_filter=filters[0] if len(filters) == 1 else Or(*filters),
            snapshot_properties=_summary(self._slices),
        )

    def _restage(self) -> None:
        """Write the files again and stage the overwrite on the table's current metadata."""
        fresh = self._warehouse.table(self._query_name)
        assert fresh is not None
        self.prepare(fresh)

    def _fenced_out(self, table: Table) -> bool:
        records = slice_records(table)
        for s in self._slices:
            record = records.get((s.customer_id, s.day.isoformat()))
            if record is not None and record.state_version > s.state_version:
                return True
        return False

    def commit(self) -> list[LoadedSlice] | None:
        """Commit the overwrite (one Iceberg commit), unless a partition's newest snapshot holds
        a higher state version (``None``); a lost race is staged again on fresh metadata."""
        assert self._txn is not None and self._table is not None
        for attempt in range(self._warehouse.commit_attempts):
            if _clock() - self._prepared_at > RESTAGE_AFTER_SECONDS:  # long stalled: its files may be swept
                self._restage()
            if self._fenced_out(self._table):
                self.abort()
                return None
            try:
                self._txn.commit_transaction()
                break
            except (CommitFailedException, ValidationException):
                # another loader committed since this overwrite was staged: pyiceberg's own retry
                # gives up when the other commit touched these partitions (ValidationException)
                if attempt + 1 == self._warehouse.commit_attempts:
                    raise
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
                self._restage()
        self._txn = None
        return [
            LoadedSlice(
                run_id=s.run_id,
                rows=s.rows.num_rows,
                path=self._warehouse.describe(self._query_name, s.customer_id, s.day),
                state_version=s.state_version,
            )
            for s in self._slices
        ]

    def abort(self) -> None:
        """Drop the staged overwrite: nothing was committed (its data files are orphans until
        the table's orphan-file cleanup)."""
        self._txn = None


class StagedIcebergSlice:
    """One partition's staged overwrite (the ``StagedSlice`` of :meth:`IcebergWarehouse.stage_slice`)."""

    def __init__(self, batch: StagedIcebergSlices, run_id: str, rows: int, state_version: int):
        self._batch = batch
        self.run_id, self.rows, self.state_version = run_id, rows, state_version

    def commit(self) -> LoadedSlice | None:
        """Commit it (one Iceberg commit); ``None`` when a higher state version fenced it out."""
        loaded = self._batch.commit()
        return None if loaded is None else loaded[0]

    def abort(self) -> None:
        """Drop it."""
        self._batch.abort()


def _summary(slices: list[_Slice]) -> dict[str, str]:
    """The snapshot summary of a load: the partition, run, version and rows of a single slice
    under ``gridcat.*``; several slices also as ``gridcat.slices``, a JSON list of
    ``[customer_id, logical_date, run_id, state_version, rows]``."""
    first = slices[0]
    summary = {
        SUMMARY["customer"]: first.customer_id,
        SUMMARY["day"]: first.day.isoformat(),
        SUMMARY["run"]: first.run_id,
        SUMMARY["version"]: str(first.state_version),
        SUMMARY["rows"]: str(first.rows.num_rows),
    }
    if len(slices) > 1:
        summary[SUMMARY["slices"]] = json.dumps(
            [[s.customer_id, s.day.isoformat(), s.run_id, s.state_version, s.rows.num_rows] for s in slices],
            separators=(",", ":"),
        )
    return summary
