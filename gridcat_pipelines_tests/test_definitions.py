"""The Dagster code location loads and validates as ``dagster dev`` would load it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_definitions_validate(tmp_path):
    exe = Path(sys.executable).with_name("dagster")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "GRIDCAT_HOME": str(tmp_path / "home")}
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    result = subprocess.run(
        [str(exe), "definitions", "validate", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr
