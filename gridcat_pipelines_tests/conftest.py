"""Shared fixtures: a state store on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from gridcat_pipelines.state import StateStore, migrations
from gridcat_pipelines.state.db import create_state_engine
from gridcat_pipelines_tests.gate_helpers import env  # noqa: F401 - the gate tests' fixture
from gridcat_pipelines_tests.pg_harness import DatabaseFactory, server_url

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[DatabaseFactory]:
    """Creates databases on the test PostgreSQL server; drops them all at the end of the run."""
    with server_url() as url:
        factory = DatabaseFactory(url)
        try:
            yield factory
        finally:
            factory.close()


@pytest.fixture(scope="session")
def pg_template(pg_databases: DatabaseFactory) -> str:
    """A migrated database to copy per test (CREATE DATABASE ... TEMPLATE is fast)."""
    url = pg_databases.create()
    engine = create_state_engine(url)
    migrations.upgrade(engine)
    engine.dispose()
    return sa.engine.make_url(url).database


@pytest.fixture
def pg_url(pg_databases: DatabaseFactory, pg_template: str) -> str:
    """URL of a fresh, migrated PostgreSQL database for one test."""
    return pg_databases.create(template=pg_template)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """URL of a fresh, migrated SQLite database for one test."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = create_state_engine(url)
    migrations.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request) -> str:
    """A fresh migrated database URL, once per dialect."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def store(db_url: str) -> Iterator[StateStore]:
    """A state store on a fresh database, once per dialect."""
    s = StateStore.open(db_url)
    try:
        yield s
    finally:
        s.close()
