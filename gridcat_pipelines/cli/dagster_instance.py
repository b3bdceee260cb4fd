"""The local Dagster instance shared by the CLI, ``dagster dev`` and ``dagster-daemon``."""

from __future__ import annotations

import shutil

import dagster as dg

from gridcat_pipelines.config import REPO_ROOT, Settings


def ensure_instance(settings: Settings) -> dg.DagsterInstance:
    """The instance at ``settings.dagster_home``; created with the project's ``dagster.yaml`` if new."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config_file = home / "dagster.yaml"
    if not config_file.exists():
        shutil.copyfile(REPO_ROOT / "dagster.yaml", config_file)
    return dg.DagsterInstance.from_config(str(home))
