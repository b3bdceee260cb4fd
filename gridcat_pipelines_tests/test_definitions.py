"""The Dagster code location loads and validates as ``dagster dev`` would load it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gridcat_pipelines.config import Settings
from gridcat_pipelines.definitions import build_defs

ROOT = Path(__file__).resolve().parents[1]


def test_definitions_validate(tmp_path):
    exe = Path(sys.executable).with_name("dagster")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "GRIDCAT_HOME": str(tmp_path / "home")}
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    result = subprocess.run(
        [str(exe), "definitions", "validate", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_dg_check_defs_and_list_defs_from_the_repository_root(tmp_path):
    exe = Path(sys.executable).with_name("dg")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "GRIDCAT_HOME": str(tmp_path / "home")}
    check = subprocess.run([str(exe), "check", "defs"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0 and "All definitions loaded successfully" in check.stdout + check.stderr, check.stderr
    listed = subprocess.run(
        [str(exe), "list", "defs", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    from_dg = {
        "assets": sorted(a["asset_key"] for a in found["assets"]),
        "asset_checks": sorted(c["key"] for c in found["asset_checks"]),
        **{kind: sorted(d["name"] for d in found[kind]) for kind in ("jobs", "schedules", "sensors", "resources")},
    }
    assert from_dg == snapshot_of(Settings.from_env({"GRIDCAT_HOME": str(tmp_path / "home")})), (
        "dg loads what build_defs builds"
    )


# ---------------------------------------------------------------- the definitions snapshot

SNAPSHOT = ROOT / "gridcat_pipelines_tests" / "fixtures" / "definitions_snapshot.json"


def snapshot_of(settings: Settings) -> dict:
    """Asset keys, checks, jobs, schedules, sensors and resources of ``build_defs(settings)``, in
    the shape ``dg list defs --json`` prints (names only: what changes by accident)."""
    repo = build_defs(settings).get_repository_def()
    return {
        "assets": sorted(key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()),
        "asset_checks": sorted(
            f"{key.asset_key.to_user_string()}:{key.name}" for key in repo.asset_graph.asset_check_keys
        ),
        "jobs": sorted(job.name for job in repo.get_all_jobs() if not job.name.startswith("__")),
        "schedules": sorted(s.name for s in repo.schedule_defs),
        "sensors": sorted(s.name for s in repo.sensor_defs),
        "resources": sorted(repo.get_top_level_resources()),
    }


def test_the_definitions_match_the_checked_in_snapshot(tmp_path):
    """Fails when an asset key, check, job, schedule, sensor or resource changes by accident.
    On purpose? Regenerate: .venv/bin/python -m gridcat_pipelines_tests.test_definitions"""
    current = snapshot_of(Settings.from_env({"GRIDCAT_HOME": str(tmp_path / "home")}))
    assert current == json.loads(SNAPSHOT.read_text()), (
        "the definitions changed; if on purpose, regenerate the snapshot with "
        ".venv/bin/python -m gridcat_pipelines_tests.test_definitions"
    )


@pytest.mark.parametrize("kind", ["parquet", "postgres", "iceberg"])
def test_the_warehouse_assets_carry_the_target_as_their_kind(tmp_path, kind):
    """The UI labels each warehouse asset with the target it loads into (GRIDCAT_WAREHOUSE; the
    gate's ``@dg.definitions``, which ``dg`` loads, reads the same setting)."""
    env = {"GRIDCAT_HOME": str(tmp_path / "home"), "GRIDCAT_WAREHOUSE": kind}
    if kind == "postgres":
        env["GRIDCAT_WAREHOUSE_URL"] = "postgresql://gridcat@127.0.0.1:5432/warehouse"
    graph = build_defs(Settings.from_env(env)).get_repository_def().asset_graph
    warehouse = [key for key in graph.get_all_asset_keys() if key.path[:2] == ["google_ads", "warehouse"]]
    assert warehouse
    for key in warehouse:
        assert graph.get(key).kinds == {kind}, key


if __name__ == "__main__":  # regenerate the snapshot
    import tempfile

    with tempfile.TemporaryDirectory() as home:
        SNAPSHOT.write_text(json.dumps(snapshot_of(Settings.from_env({"GRIDCAT_HOME": home})), indent=2) + "\n")
    print(f"wrote {SNAPSHOT}")
