"""The PostgreSQL warehouse: one table per feed in schema ``google_ads``, loaded from Arrow.

``google_ads.<query_name>`` has the feed's columns (created on the first load from the Arrow
schema, types mapped; columns a later schema adds are added), then ``run_id`` (the raw run each
row came from) and the slice columns ``gridcat_customer_id`` / ``gridcat_logical_date``, indexed.
The slice columns are prefixed because feeds have their own ``customer_id`` column (from
``customer.id``). ``google_ads._slices`` holds one row per loaded slice (run, row count, load
time), so ``loaded_slice`` is a primary-key lookup and an empty slice is told from a missing one.

A load runs in ONE transaction, staged then committed (see ``gridcat_pipelines.warehouse.loader``):
:meth:`PostgresWarehouse.stage_slice` upserts the ``_slices`` row only if the slice holds no
higher ``state_version`` (its row lock then queues concurrent loads of the same slice until
this one ends; a higher version fences this load out at once), DELETEs the slice and ingests
the new rows; :meth:`StagedPostgresSlice.commit`, called while the partition's state is held
still, COMMITs. Readers see the old slice or the new one; an error anywhere (e.g. a bad value
mid-COPY) or an abort rolls back to the old slice.

Rows travel as Arrow, never as Python values: the load is ADBC's ``adbc_ingest`` (PostgreSQL's
binary COPY, straight from the Arrow buffers) on the same connection and in the same transaction
as the fence and the slice record; ``read_slice`` fetches Arrow the same way. The Arrow columns
are cast first to the types their PostgreSQL columns were created with (``ingest_types``).
DDL stays on psycopg. Identifiers come from validated names and are always quoted
(``psycopg.sql.Identifier``, or the same quoting for the statements sent through ADBC).

Per process, the DDL runs once per feed and set of columns, and ADBC connections are kept
between loads (``adbc_pool``: opening one costs ~90 ms). A small slice then loads in a few ms.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

import adbc_driver_postgresql.dbapi as adbc_pg
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from gridcat_pipelines.errors import invalid_argument, not_found
from gridcat_pipelines.warehouse.adbc_pool import AdbcPool
from gridcat_pipelines.warehouse.parquet_target import RUN_ID_COLUMN, LoadedSlice, UnfencedReplace

SCHEMA = "google_ads"
SLICES_TABLE = "_slices"
CUSTOMER_COLUMN = "gridcat_customer_id"
DATE_COLUMN = "gridcat_logical_date"
RESERVED_COLUMNS = (RUN_ID_COLUMN, CUSTOMER_COLUMN, DATE_COLUMN)
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_COLUMN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# Arrow type -> PostgreSQL column type (checked in order; the first predicate that holds wins).
_TYPE_MAP: list[tuple[Callable[[pa.DataType], bool], str]] = [
    (pa.types.is_boolean, "BOOLEAN"),
    (lambda t: pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t), "SMALLINT"),
    (lambda t: pa.types.is_int32(t) or pa.types.is_uint16(t), "INTEGER"),
    (lambda t: pa.types.is_int64(t) or pa.types.is_uint32(t), "BIGINT"),
    (pa.types.is_uint64, "NUMERIC(20)"),
    (lambda t: pa.types.is_float16(t) or pa.types.is_float32(t), "REAL"),
    (pa.types.is_float64, "DOUBLE PRECISION"),
    (pa.types.is_decimal, "NUMERIC"),
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "TEXT"),
    (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), "BYTEA"),
    (lambda t: pa.types.is_date32(t) or pa.types.is_date64(t), "DATE"),
    (lambda t: pa.types.is_timestamp(t) and t.tz is not None, "TIMESTAMPTZ"),
    (pa.types.is_timestamp, "TIMESTAMP"),
    (pa.types.is_time, "TIME"),
    (pa.types.is_null, "TEXT"),
]

# Arrow types binary COPY cannot send as they are -> the Arrow type of their column's PostgreSQL type
_INGEST_CASTS: list[tuple[Callable[[pa.DataType], bool], pa.DataType]] = [
    (pa.types.is_int8, pa.int16()),
    (pa.types.is_uint8, pa.int16()),
    (pa.types.is_uint16, pa.int32()),
    (pa.types.is_uint32, pa.int64()),
    (pa.types.is_uint64, pa.decimal128(20, 0)),
    (pa.types.is_float16, pa.float32()),
    (pa.types.is_date64, pa.date32()),
    (pa.types.is_large_string, pa.string()),
    (pa.types.is_large_binary, pa.binary()),
    (pa.types.is_null, pa.string()),
]


def ingest_types(table: pa.Table) -> pa.Table:
    """``table`` with each column in the Arrow type binary COPY sends for its PostgreSQL column
    type (``pg_type``): unsigned and 8-bit integers widened, ``uint64`` as ``NUMERIC(20)``, a
    null-typed column as text. Vectorised casts; no per-value Python."""
    columns, fields = [], []
    for field, column in zip(table.schema, table.columns):
        target = next((t for matches, t in _INGEST_CASTS if matches(field.type)), None)
        if target is not None:
            column = pc.cast(column, target)
            field = pa.field(field.name, target, field.nullable)
        columns.append(column)
        fields.append(field)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _quoted(*names: str) -> str:
    """``"schema"."table"``: identifiers quoted as ``psycopg.sql.Identifier`` quotes them (the
    names were validated before: lower-case letters, digits, underscores)."""
    return ".".join('"' + n.replace('"', '""') + '"' for n in names)


def pg_type(arrow_type: pa.DataType) -> str:
    """The PostgreSQL column type for an Arrow type (``INVALID_ARGUMENT`` when unsupported)."""
    for matches, name in _TYPE_MAP:
        if matches(arrow_type):
            return name
    raise invalid_argument(f"Arrow type {arrow_type} has no PostgreSQL column type in the warehouse")


def libpq_url(url: str) -> str:
    """A libpq connection URL: SQLAlchemy's ``postgresql+psycopg://`` spelling is accepted."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def feed_name(query_name: str) -> str:
    """``query_name`` when it is a valid table name (``INVALID_ARGUMENT`` otherwise)."""
    if not isinstance(query_name, str) or not _NAME_RE.match(query_name):
        raise invalid_argument(f"query_name {query_name!r} must match ^[a-z][a-z0-9_]{{0,62}}$")
    return query_name


def _column_names(schema: pa.Schema) -> list[str]:
    names = list(schema.names)
    for name in names:
        if not _COLUMN_RE.match(name):
            raise invalid_argument(f"column {name!r} is not a warehouse column name")
        if name in RESERVED_COLUMNS:
            raise invalid_argument(f"column {name!r} is reserved by the warehouse")
    if len(set(names)) != len(names):
        raise invalid_argument(f"duplicate column names in {names}")
    return names


class PostgresWarehouse(UnfencedReplace):
    """One table per feed in schema ``google_ads`` of the database at ``url``.

    ``before_commit`` (tests only) is called inside the replace transaction, after the COPY.
    """

    def __init__(self, url: str, *, before_commit: Callable[[], None] | None = None):
        self._url = libpq_url(url)
        self._before_commit = before_commit
        # (feed, columns) this object has made sure exist: a later load with the same columns
        # skips the DDL connection; forgotten when a load of the feed fails (a dropped table)
        self._ensured: set[tuple[str, frozenset[str]]] = set()
        self._pool = AdbcPool(self._url)  # ADBC connections outlive a load: opening one costs ~90 ms

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self._url, autocommit=True)

    def describe(self, query_name: str, customer_id: str, day: date) -> str:
        """A readable locator of one slice (no password), used as the slice's ``path``."""
        info = psycopg.conninfo.conninfo_to_dict(self._url)
        where = f"{info.get('host', '')}:{info.get('port', '5432')}/{info.get('dbname', '')}"
        return (
            f"postgresql://{where}/{SCHEMA}.{query_name}"
            f"?{CUSTOMER_COLUMN}={customer_id}&{DATE_COLUMN}={day.isoformat()}"
        )

    # ------------------------------------------------------------------ DDL

    def _ensure_table(self, conn: psycopg.Connection, table: str, schema: pa.Schema) -> None:
        """Create the schema, ``_slices`` and the feed's table if missing; add new columns."""
        names = _column_names(schema)
        with conn.transaction():
            # one DDL writer at a time per database (CREATE ... IF NOT EXISTS races otherwise)
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('gridcat.warehouse.ddl', 0))")
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.{} ("
                    " query_name TEXT NOT NULL, customer_id TEXT NOT NULL, logical_date DATE NOT NULL,"
                    " run_id TEXT NOT NULL, rows BIGINT NOT NULL, loaded_at TIMESTAMPTZ NOT NULL,"
                    " state_version BIGINT, PRIMARY KEY (query_name, customer_id, logical_date))"
                ).format(sql.Identifier(SCHEMA), sql.Identifier(SLICES_TABLE))
            )
            # warehouses loaded before loads were fenced: the version each slice was loaded at
            conn.execute(
                sql.SQL("ALTER TABLE {}.{} ADD COLUMN IF NOT EXISTS state_version BIGINT").format(
                    sql.Identifier(SCHEMA), sql.Identifier(SLICES_TABLE)
                )
            )
            existing = {
                row[0]
                for row in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
                    (SCHEMA, table),
                )
            }
            target = sql.Identifier(SCHEMA, table)
            if not existing:
                columns = [
                    sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(pg_type(schema.field(n).type))) for n in names
                ]
                columns += [
                    sql.SQL("{} TEXT NOT NULL").format(sql.Identifier(RUN_ID_COLUMN)),
                    sql.SQL("{} TEXT NOT NULL").format(sql.Identifier(CUSTOMER_COLUMN)),
                    sql.SQL("{} DATE NOT NULL").format(sql.Identifier(DATE_COLUMN)),
                ]
                conn.execute(sql.SQL("CREATE TABLE {} ({})").format(target, sql.SQL(", ").join(columns)))
                conn.execute(
                    sql.SQL("CREATE INDEX {} ON {} ({}, {})").format(
                        sql.Identifier(f"{table}_slice_idx"),
                        target,
                        sql.Identifier(CUSTOMER_COLUMN),
                        sql.Identifier(DATE_COLUMN),
                    )
                )
                return
            for name in names:
                if name not in existing:  # a newer schema version added a column
                    conn.execute(
                        sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                            target, sql.Identifier(name), sql.SQL(pg_type(schema.field(name).type))
                        )
                    )

    # ---------------------------------------------------------------- writes

    def stage_slice(
        self, query_name: str, customer_id: str, day: date, table: pa.Table, run_id: str, state_version: int
    ) -> StagedPostgresSlice:
        """Write the partition's new slice (each row gets ``run_id``) in an open transaction.

        The returned slice is fenced out at once (its ``commit`` answers ``None``) when the
        slice already holds a higher state version."""
        feed = feed_name(query_name)
        names = _column_names(table.schema)
        ensured = (feed, frozenset(names))
        if ensured not in self._ensured:
            with psycopg.connect(self._url, autocommit=True) as ddl:
                self._ensure_table(ddl, feed, table.schema)
            self._ensured.add(ensured)
        conn = self._pool.take()  # a transaction is open from the first statement
        try:
            with conn.cursor() as cur:  # closed when staged; the transaction stays open
                return self._stage(conn, cur, feed, names, customer_id, day, table, run_id, state_version)
        except BaseException:
            self._pool.give_back(conn, healthy=False)  # closed: rolls back
            self._ensured.discard(ensured)  # the next load checks the table again
            raise

    def _stage(
        self,
        conn: adbc_pg.Connection,
        cur: adbc_pg.Cursor,
        feed: str,
        names: list[str],
        customer_id: str,
        day: date,
        table: pa.Table,
        run_id: str,
        state_version: int,
    ) -> StagedPostgresSlice:
        """The fence upsert, the DELETE and the ingest of one slice on ``conn``'s open transaction."""
        # the upsert row-locks the slice's bookkeeping row first: a concurrent load of the
        # same slice waits here until this one commits or aborts, and its DELETE then sees
        # this one's rows; a slice of a higher state version is left alone (fenced out)
        cur.execute(
            f"INSERT INTO {_quoted(SCHEMA, SLICES_TABLE)}"
            " (query_name, customer_id, logical_date, run_id, rows, loaded_at, state_version)"
            " VALUES ($1, $2, $3, $4, $5, now(), $6)"
            " ON CONFLICT (query_name, customer_id, logical_date) DO UPDATE"
            " SET run_id = EXCLUDED.run_id, rows = EXCLUDED.rows, loaded_at = EXCLUDED.loaded_at,"
            " state_version = EXCLUDED.state_version"
            f" WHERE COALESCE({_quoted(SCHEMA, SLICES_TABLE)}.state_version, 0) <= EXCLUDED.state_version"
            " RETURNING 1",
            (feed, customer_id, day, run_id, table.num_rows, int(state_version)),
        )
        won = cur.fetchone()
        staged = StagedPostgresSlice(
            conn,
            run_id,
            table.num_rows,
            int(state_version),
            self.describe(feed, customer_id, day),
            fenced_out=won is None,
            before_commit=self._before_commit,
            give_back=self._pool.give_back,
        )
        if won is None:
            return staged
        cur.execute(
            f"DELETE FROM {_quoted(SCHEMA, feed)} WHERE {_quoted(CUSTOMER_COLUMN)} = $1"
            f" AND {_quoted(DATE_COLUMN)} = $2",
            (customer_id, day),
        )
        if table.num_rows:
            rows = ingest_types(table.select(names))
            n = rows.num_rows
            rows = rows.append_column(RUN_ID_COLUMN, pa.repeat(pa.scalar(run_id, pa.string()), n))
            rows = rows.append_column(CUSTOMER_COLUMN, pa.repeat(pa.scalar(customer_id, pa.string()), n))
            rows = rows.append_column(DATE_COLUMN, pa.repeat(pa.scalar(day, pa.date32()), n))
            cur.adbc_ingest(feed, rows, mode="append", db_schema_name=SCHEMA)
        return staged

    # ----------------------------------------------------------------- reads

    def loaded_slice(self, query_name: str, customer_id: str, day: date) -> LoadedSlice | None:
        """The run and row count the partition's slice holds, or ``None`` if never loaded."""
        return self.loaded_slices(query_name, [(customer_id, day)]).get((customer_id, day))

    def loaded_slices(self, query_name: str, partitions: list[tuple[str, date]]) -> dict[tuple[str, date], LoadedSlice]:
        """:meth:`loaded_slice` of many partitions of one feed: one connection, one query (the
        partitions as two arrays). Partitions with nothing loaded are left out."""
        feed = feed_name(query_name)
        if not partitions:
            return {}
        customers = [customer_id for customer_id, _ in partitions]
        days = [day for _, day in partitions]
        with self._connect() as conn:
            try:
                rows = conn.execute(
                    sql.SQL(
                        "SELECT s.customer_id, s.logical_date, s.run_id, s.rows, s.state_version FROM {} s"
                        " JOIN unnest(%s::text[], %s::date[]) AS p(customer_id, logical_date)"
                        " ON s.customer_id = p.customer_id AND s.logical_date = p.logical_date"
                        " WHERE s.query_name = %s"
                    ).format(sql.Identifier(SCHEMA, SLICES_TABLE)),
                    (customers, days, feed),
                ).fetchall()
            except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):  # nothing loaded yet
                return {}
        return {
            (customer_id, day): LoadedSlice(
                run_id=run_id,
                rows=int(count),
                path=self.describe(feed, customer_id, day),
                state_version=None if version is None else int(version),
            )
            for customer_id, day, run_id, count, version in rows
        }

    def read_slice(self, query_name: str, customer_id: str, day: date) -> pa.Table:
        """The rows of one partition's slice: the feed's columns and ``run_id`` (``NOT_FOUND``
        when the feed's table does not exist)."""
        feed = feed_name(query_name)
        with psycopg.connect(self._url, autocommit=True) as probe:
            exists = probe.execute("SELECT to_regclass(%s)", (_quoted(SCHEMA, feed),)).fetchone()[0]
        if exists is None:
            raise not_found(f"the warehouse has no table {SCHEMA}.{feed}")
        conn, healthy = self._pool.take(), False
        try:
            with conn.cursor() as cur:
                cur.execute(
                    f"SELECT * FROM {_quoted(SCHEMA, feed)} WHERE {_quoted(CUSTOMER_COLUMN)} = $1"
                    f" AND {_quoted(DATE_COLUMN)} = $2",
                    (customer_id, day),
                )
                table = cur.fetch_arrow_table()
            conn.rollback()
            healthy = True
        finally:
            self._pool.give_back(conn, healthy=healthy)
        keep = [n for n in table.column_names if n not in (CUSTOMER_COLUMN, DATE_COLUMN)]
        table = table.select(keep)
        # drop ADBC's per-field "POSTGRESQL:type" annotations: the slice's schema is the feed's
        return table.cast(pa.schema([pa.field(f.name, f.type, f.nullable) for f in table.schema]))


class StagedPostgresSlice:
    """A slice COPYed in an open transaction (see :meth:`PostgresWarehouse.stage_slice`)."""

    def __init__(
        self,
        conn: adbc_pg.Connection,
        run_id: str,
        rows: int,
        state_version: int,
        path: str,
        *,
        fenced_out: bool,
        before_commit: Callable[[], None] | None,
        give_back: Callable[..., None],
    ):
        self._conn, self._fenced_out, self._before_commit = conn, fenced_out, before_commit
        self._give_back = give_back
        self.run_id, self.rows, self.state_version, self.path = run_id, rows, state_version, path

    def commit(self) -> LoadedSlice | None:
        """COMMIT the slice (``None`` when a higher state version fenced it out at staging)."""
        if self._fenced_out:
            self.abort()
            return None
        committed = False
        try:
            if self._before_commit is not None:
                self._before_commit()
            self._conn.commit()
            committed = True
        finally:
            self._give_back(self._conn, healthy=committed)  # after a failed COMMIT: closed, rolls back
        return LoadedSlice(run_id=self.run_id, rows=self.rows, path=self.path, state_version=self.state_version)

    def abort(self) -> None:
        """Roll back: the slice keeps what it had."""
        rolled_back = False
        try:
            self._conn.rollback()
            rolled_back = True
        finally:
            self._give_back(self._conn, healthy=rolled_back)
