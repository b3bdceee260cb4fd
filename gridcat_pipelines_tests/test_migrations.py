"""Versioned DDL: applying twice is a no-op; an old or newer schema is reported with the fix."""

from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa

from gridcat_pipelines.errors import FAILED_PRECONDITION, GridcatError
from gridcat_pipelines.state import StateStore, migrations
from gridcat_pipelines.state.db import create_state_engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    return request.getfixturevalue("pg_databases").create()


def _tables(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_upgrade_creates_schema_and_is_idempotent(empty_url):
    engine = create_state_engine(empty_url)
    assert migrations.current_version(engine) == 0
    applied = migrations.upgrade(engine)
    shipped = [m.version for m in migrations.available_migrations(engine.dialect.name)]
    assert [m.version for m in applied] == shipped
    assert {
        "partition_state",
        "partition_state_history",
        "idempotency_record",
        "state_change_counter",
        migrations.MIGRATIONS_TABLE,
    } <= _tables(engine)
    assert migrations.upgrade(engine) == []
    with engine.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {migrations.MIGRATIONS_TABLE}").scalar() == len(shipped)
        assert conn.exec_driver_sql("SELECT count(*) FROM gridcat_meta").scalar() == 1
    migrations.check_schema(engine)
    engine.dispose()


def test_older_schema_says_how_to_fix(empty_url):
    engine = create_state_engine(empty_url)
    migrations.upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM {migrations.MIGRATIONS_TABLE}")
    with pytest.raises(GridcatError) as err:
        StateStore(engine)
    assert err.value.code == FAILED_PRECONDITION
    assert "gridcat db upgrade" in err.value.message
    engine.dispose()


def test_newer_schema_is_refused(empty_url):
    engine = create_state_engine(empty_url)
    migrations.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"INSERT INTO {migrations.MIGRATIONS_TABLE} (version, name, checksum, applied_at) VALUES (99, 'future', 'x', :t)"
            ),
            {"t": migrations._now_for(engine.dialect.name)},
        )
    with pytest.raises(GridcatError) as err:
        StateStore(engine)
    assert err.value.code == FAILED_PRECONDITION
    assert "newer" in err.value.message
    engine.dispose()


def test_an_edited_applied_migration_is_detected(tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(migrations.SQL_DIR, sql_dir)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = create_state_engine(url)
    migrations.upgrade(engine)
    edited = sql_dir / "sqlite" / "0001_partition_state.sql"
    edited.write_text(edited.read_text() + "\n-- edited\n")
    with pytest.raises(GridcatError) as err:
        migrations.upgrade(engine, sql_dir)
    assert err.value.code == FAILED_PRECONDITION
    engine.dispose()


def test_both_dialects_ship_the_same_versions():
    sqlite = [(m.version, m.name) for m in migrations.available_migrations("sqlite")]
    postgres = [(m.version, m.name) for m in migrations.available_migrations("postgresql")]
    assert sqlite == postgres


def test_statement_splitter_keeps_statements_whole():
    sql = "-- c\nCREATE TABLE a (x TEXT DEFAULT 'a;b');\nINSERT INTO a VALUES ('1');\n"
    assert migrations.split_statements(sql) == ["CREATE TABLE a (x TEXT DEFAULT 'a;b')", "INSERT INTO a VALUES ('1')"]
