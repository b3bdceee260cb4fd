"""A throwaway PostgreSQL database for one benchmark, shared by the benches under ``bench/``.

``scratch_database(pg_url, prefix)`` creates a uniquely named database on the server at
``pg_url`` and yields its URL; on exit (error included) it is dropped ``WITH (FORCE)``.
``DEFAULT_PG_URL`` is $GRIDCAT_BENCH_PG_URL, else $GRIDCAT_TEST_PG_URL, else the local server.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridcat_pipelines.state.db import normalize_url  # noqa: E402

DEFAULT_PG_URL = (
    os.environ.get("GRIDCAT_BENCH_PG_URL")
    or os.environ.get("GRIDCAT_TEST_PG_URL")
    or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def scratch_database(pg_url: str, prefix: str) -> Iterator[str]:
    """The URL of a new database named ``<prefix>_<pid>_<random>``, dropped on exit."""
    admin_url = sa.engine.make_url(normalize_url(pg_url))
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
