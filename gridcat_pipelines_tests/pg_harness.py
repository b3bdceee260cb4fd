"""A real PostgreSQL server for the tests: the one ``GRIDCAT_TEST_PG_URL`` names, or a
throwaway server this harness starts (``initdb`` + ``pg_ctl`` as the ``postgres`` user on
loopback, in a temporary directory) when that variable is unset."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from gridcat_pipelines.state.db import normalize_url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError(
        "no PostgreSQL server for the tests: set GRIDCAT_TEST_PG_URL or install the Debian "
        "package postgresql (initdb/pg_ctl in /usr/lib/postgresql/<v>/bin)"
    )


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@contextmanager
def throwaway_server() -> Iterator[str]:
    """Start a private PostgreSQL server on loopback; yield its admin URL; stop and delete it."""
    bindir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="gridcat-pg-"))
    data = root / "data"
    port = _free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        os.chmod(root, 0o700)
    subprocess.run(
        _as_postgres(
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    opts = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    subprocess.run(
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def server_url() -> Iterator[str]:
    """The admin URL of the server the tests use (the configured one, else a throwaway one)."""
    configured = os.environ.get("GRIDCAT_TEST_PG_URL")
    if configured:
        yield normalize_url(configured)
        return
    with throwaway_server() as url:
        yield url


class DatabaseFactory:
    """Creates and drops databases on one server; every database it made is dropped at close."""

    def __init__(self, admin_url: str):
        self.admin_url = sa.engine.make_url(admin_url)
        self._admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        self._prefix = f"gridcat_t{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self._made: list[str] = []

    def create(self, template: str | None = None) -> str:
        """A new empty (or template-copied) database; returns its URL."""
        name = f"{self._prefix}_{len(self._made)}"
        with self._admin.connect() as conn:
            clause = f' TEMPLATE "{template}"' if template else ""
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"{clause}')
        self._made.append(name)
        return self.url_of(name)

    def url_of(self, name: str) -> str:
        """The URL of database ``name`` on this server."""
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def close(self) -> None:
        """Drop every database this factory created."""
        with self._admin.connect() as conn:
            for name in reversed(self._made):
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._admin.dispose()
