"""The gate as the tests drive it: the sensor evaluated tick after tick, and a gate ``env``
(settings, a temporary Dagster instance with one customer partition, the definitions and an
open state store) on each dialect."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest

from gridcat_pipelines.cli.dagster_instance import ensure_instance
from gridcat_pipelines.cli.local_runs import evaluate_sensor
from gridcat_pipelines.config import Settings
from gridcat_pipelines.definitions import build_defs
from gridcat_pipelines.defs.gate.sensors import GATE_SENSOR_NAME
from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION
from gridcat_pipelines.state import StateStore

CUSTOMER = "1234567890"
DAY = date(2026, 11, 20)


class Gate:
    """Evaluates the gate sensor tick after tick, carrying the cursor like the daemon does."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance):
        self.defs, self.instance, self.cursor = defs, instance, None

    def tick(self) -> list[dg.RunRequest]:
        result = evaluate_sensor(self.defs, self.instance, GATE_SENSOR_NAME, self.cursor)
        self.cursor = result.cursor
        return list(result.run_requests or [])


@pytest.fixture
def env(tmp_path, db_url):
    """``(settings, instance, defs, store)`` of a gate on a fresh database (the conftest lends it
    to every test module)."""
    settings = Settings.from_env({"GRIDCAT_HOME": str(tmp_path / "home"), "GRIDCAT_DB_URL": db_url})
    instance = ensure_instance(settings)
    instance.add_dynamic_partitions(CUSTOMERS_PARTITION, [CUSTOMER])
    defs = build_defs(settings)
    store = StateStore.open(db_url)
    yield settings, instance, defs, store
    store.close()
    instance.dispose()
