"""The deployment files load as what they claim to be.

``deploy/dagster-postgres.yaml`` is loaded by Dagster itself: validated as an instance config, and
instantiated against a fresh PostgreSQL database (the harness's server), with the run queue's
limits read back the way the daemon reads them. ``deploy/helm/values.yaml`` is a values file
for the Dagster Helm chart; there is no Helm or Kubernetes here, so it is checked for its shape:
the key names against the chart's schema (the key sets below, copied from the chart's
``values.schema.json`` for the blocks the file sets), the launcher, coordinator and queue limits,
the same Ads API limit as the instance config, and secrets referenced by name only. With
``GRIDCAT_DAGSTER_CHART_DIR`` pointing at an unpacked chart (``helm pull dagster/dagster
--version 1.13.27 --untar``), the merged values are also validated against its full schema.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from dagster._core.instance.config import dagster_instance_config
from dagster._utils.tags import TagConcurrencyLimitsCounter

from gridcat_pipelines.config import SECRET_VARIABLES

REPO = Path(__file__).resolve().parents[1]
INSTANCE_CONFIG = REPO / "deploy" / "dagster-postgres.yaml"
HELM_VALUES = REPO / "deploy" / "helm" / "values.yaml"
WORKSPACE = REPO / "workspace.yaml"

ADS_API_TAG = "gridcat/ads_api"
ADS_API_LIMIT = {"key": ADS_API_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 4}
PG_VARIABLES = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")


# ------------------------------------------------------------------------------------------------
# deploy/dagster-postgres.yaml


def _instance_doc() -> dict[str, Any]:
    return yaml.safe_load(INSTANCE_CONFIG.read_text())


def test_instance_config_validates_with_the_queue_limits_under_concurrency_runs(tmp_path, monkeypatch):
    """Dagster's own validation accepts the file as it is (no database needed for this part)."""
    for name in PG_VARIABLES:
        monkeypatch.setenv(name, "x")
    shutil.copy(INSTANCE_CONFIG, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert ADS_API_LIMIT in config["concurrency"]["runs"]["tag_concurrency_limits"]


def test_the_run_coordinator_block_cannot_hold_the_tag_limits_too(tmp_path, monkeypatch):
    """Why the limit lives under ``concurrency: runs:``: Dagster 1.13 refuses it in both places."""
    for name in PG_VARIABLES:
        monkeypatch.setenv(name, "x")
    doc = _instance_doc()
    doc["run_coordinator"].setdefault("config", {})["tag_concurrency_limits"] = [ADS_API_LIMIT]
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(dg.DagsterInvalidConfigError, match="incompatible with the `concurrency > runs` config"):
        dagster_instance_config(str(tmp_path))


@pytest.fixture
def pg_instance(tmp_path, pg_databases, monkeypatch) -> Iterator[dg.DagsterInstance]:
    """The instance ``deploy/dagster-postgres.yaml`` describes, on a fresh database of the test
    server (Dagster creates its tables there; the factory drops the database at the end)."""
    url = sa.engine.make_url(pg_databases.create())
    for name, value in zip(
        PG_VARIABLES,
        (url.host or "127.0.0.1", str(url.port or 5432), url.username or "postgres", url.password or "", url.database),
    ):
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(INSTANCE_CONFIG, home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        yield instance
    finally:
        instance.dispose()


def _run(run_id: str, tags: dict[str, str]) -> dg.DagsterRun:
    return dg.DagsterRun(job_name="google_ads_ingest", run_id=run_id, tags=tags)


@pytest.mark.postgres
def test_postgres_instance_queues_runs_with_the_ads_api_limit_per_token_pool(pg_instance):
    instance = pg_instance
    assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    # The daemon does not read the limits from the coordinator object (its own config holds
    # none: they are under `concurrency: runs:`), but from the instance's merged view:
    # QueuedRunCoordinatorDaemon calls instance.get_concurrency_config().run_queue_config.
    assert instance.run_coordinator.get_run_queue_config().tag_concurrency_limits == []
    concurrency = instance.get_concurrency_config()
    queue = concurrency.run_queue_config
    assert queue is not None
    assert queue.max_concurrent_runs == 8
    assert queue.tag_concurrency_limits == [ADS_API_LIMIT]
    assert concurrency.pool_config.default_pool_limit == 1

    # What the limit does, with the daemon's own counter: per unique tag value.
    in_progress = [_run(f"g{i}", {ADS_API_TAG: "google_ads"}) for i in range(4)]
    counter = TagConcurrencyLimitsCounter(queue.tag_concurrency_limits, in_progress)
    assert counter.is_blocked(_run("g5", {ADS_API_TAG: "google_ads"}))  # the 5th on one token waits
    assert not counter.is_blocked(_run("s1", {ADS_API_TAG: "synthetic"}))  # another pool does not
    assert not counter.is_blocked(_run("w1", {"gridcat/warehouse": "load"}))  # loads: the pool, not the queue
    counter = TagConcurrencyLimitsCounter(queue.tag_concurrency_limits, in_progress[:3])
    assert not counter.is_blocked(_run("g4", {ADS_API_TAG: "google_ads"}))


# ------------------------------------------------------------------------------------------------
# deploy/helm/values.yaml

# Key sets of the Dagster chart's values.schema.json (helm/dagster, 1.13 line) for the blocks the
# values file sets: a misspelt key is ignored silently by Helm where the schema allows extra keys.
# "*" marks a list's items.
CHART_KEYS: dict[tuple[str, ...], set[str]] = {
    (): {
        "global",
        "nameOverride",
        "fullnameOverride",
        "rbacEnabled",
        "imagePullSecrets",
        "dagsterWebserver",
        "computeLogManager",
        "pythonLogs",
        "dagster-user-deployments",
        "scheduler",
        "runLauncher",
        "postgresql",
        "generatePostgresqlPasswordSecret",
        "generateCeleryConfigSecret",
        "rabbitmq",
        "redis",
        "flower",
        "ingress",
        "dagsterDaemon",
        "busybox",
        "extraManifests",
        "migrate",
        "telemetry",
        "serviceAccount",
        "retention",
        "concurrency",
        "additionalInstanceConfig",
        "pipelineRun",
    },
    ("global",): {
        "postgresqlSecretName",
        "postgresqlAuthWifEnabled",
        "dagsterHome",
        "serviceAccountName",
        "celeryConfigSecretName",
        "dagsterInstanceConfigMap",
    },
    ("dagsterWebserver",): {
        "affinity",
        "annotations",
        "checkDbReadyInitContainer",
        "dbPoolMaxOverflow",
        "dbPoolRecycle",
        "dbStatementTimeout",
        "deploymentLabels",
        "enableReadOnly",
        "env",
        "envConfigMaps",
        "envSecrets",
        "extraContainers",
        "extraPrependedInitContainers",
        "image",
        "initContainerResources",
        "labels",
        "livenessProbe",
        "logFormat",
        "logLevel",
        "nameOverride",
        "nodeSelector",
        "pathPrefix",
        "podSecurityContext",
        "readinessProbe",
        "replicaCount",
        "resources",
        "schedulerName",
        "securityContext",
        "service",
        "startupProbe",
        "tolerations",
        "volumeMounts",
        "volumes",
        "workspace",
    },
    ("dagster-user-deployments",): {"enabled", "enableSubchart", "imagePullSecrets", "deployments", "includeInstance"},
    ("dagster-user-deployments", "deployments", "*"): {
        "affinity",
        "annotations",
        "codeServerArgs",
        "dagsterApiGrpcArgs",
        "deploymentNamespace",
        "deploymentStrategy",
        "env",
        "envConfigMaps",
        "envSecrets",
        "image",
        "includeConfigInLaunchedRuns",
        "initContainers",
        "labels",
        "livenessProbe",
        "name",
        "nodeSelector",
        "podSecurityContext",
        "port",
        "readinessProbe",
        "replicaCount",
        "resources",
        "schedulerName",
        "securityContext",
        "sidecarContainers",
        "startupProbe",
        "tolerations",
        "volumeMounts",
        "volumes",
    },
    ("dagster-user-deployments", "deployments", "*", "image"): {"repository", "tag", "digest", "pullPolicy"},
    ("dagster-user-deployments", "deployments", "*", "includeConfigInLaunchedRuns"): {"enabled"},
    ("runLauncher",): {"type", "config"},
    ("runLauncher", "config"): {"k8sRunLauncher", "celeryK8sRunLauncher", "customRunLauncher"},
    ("runLauncher", "config", "k8sRunLauncher"): {
        "envConfigMaps",
        "envSecrets",
        "envVars",
        "failPodOnRunFailure",
        "image",
        "imagePullPolicy",
        "jobNamespace",
        "kubeconfigFile",
        "labels",
        "loadInclusterConfig",
        "resources",
        "runK8sConfig",
        "schedulerName",
        "securityContext",
        "volumeMounts",
        "volumes",
    },
    ("runLauncher", "config", "k8sRunLauncher", "runK8sConfig"): {
        "containerConfig",
        "podSpecConfig",
        "podTemplateSpecMetadata",
        "jobSpecConfig",
        "jobMetadata",
    },
    ("postgresql",): {
        "enabled",
        "image",
        "postgresqlHost",
        "postgresqlUsername",
        "postgresqlPassword",
        "postgresqlDatabase",
        "postgresqlParams",
        "postgresqlScheme",
        "service",
        "authProvider",
    },
    ("postgresql", "service"): {"port"},
    ("dagsterDaemon",): {
        "affinity",
        "annotations",
        "backfills",
        "checkDbReadyInitContainer",
        "deploymentLabels",
        "enabled",
        "env",
        "envConfigMaps",
        "envSecrets",
        "extraContainers",
        "extraPrependedInitContainers",
        "heartbeatTolerance",
        "image",
        "initContainerResources",
        "labels",
        "livenessProbe",
        "logFormat",
        "nodeSelector",
        "podSecurityContext",
        "readinessProbe",
        "resources",
        "runCoordinator",
        "runMonitoring",
        "runRetries",
        "schedulerName",
        "schedules",
        "securityContext",
        "sensors",
        "startupProbe",
        "tolerations",
        "volumeMounts",
        "volumes",
    },
    ("dagsterDaemon", "runCoordinator"): {"enabled", "type", "config"},
    ("dagsterDaemon", "runCoordinator", "config"): {"queuedRunCoordinator", "customRunCoordinator"},
    ("dagsterDaemon", "runCoordinator", "config", "queuedRunCoordinator"): {
        "maxConcurrentRuns",
        "tagConcurrencyLimits",
        "dequeueIntervalSeconds",
        "dequeueNumWorkers",
        "dequeueUseThreads",
        "blockOpConcurrencyLimitedRuns",
    },
    # rendered key by key by the chart's configmap-instance.yaml (the schema takes any mapping)
    ("dagsterDaemon", "runMonitoring"): {
        "enabled",
        "startTimeoutSeconds",
        "cancelTimeoutSeconds",
        "maxRuntimeSeconds",
        "maxResumeRunAttempts",
        "pollIntervalSeconds",
        "freeSlotsAfterRunEndSeconds",
    },
    ("dagsterDaemon", "sensors"): {"useThreads", "numWorkers", "numSubmitWorkers"},
    ("dagsterDaemon", "schedules"): {"useThreads", "numWorkers", "numSubmitWorkers"},
    ("concurrency",): {"enabled", "pools", "runs"},
    ("concurrency", "pools"): {"defaultLimit", "granularity", "opGranularityRunBuffer"},
    ("concurrency", "runs"): {"maxConcurrentRuns", "tagConcurrencyLimits"},
    ("concurrency", "runs", "tagConcurrencyLimits", "*"): {"key", "value", "limit"},
    ("retention",): {"enabled", "schedule", "sensor", "autoMaterialize"},
    ("retention", "schedule"): {"purgeAfterDays"},
    ("retention", "sensor"): {"purgeAfterDays"},
    ("retention", "sensor", "purgeAfterDays"): {"skipped", "success", "failure", "started"},
    ("telemetry",): {"enabled"},
}


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    doc = yaml.safe_load(HELM_VALUES.read_text())
    assert isinstance(doc, dict)
    return doc


def _walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every node with its path; list items get the path element "*"."""
    yield path, node
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _walk(child, (*path, str(key)))
    elif isinstance(node, list):
        for child in node:
            yield from _walk(child, (*path, "*"))


def test_helm_values_use_only_the_charts_key_names(values):
    unknown = [
        (path, sorted(set(node) - CHART_KEYS[path]))
        for path, node in _walk(values)
        if isinstance(node, dict) and path in CHART_KEYS and set(node) - CHART_KEYS[path]
    ]
    assert not unknown


def test_helm_values_deploy_a_k8s_run_launcher_and_the_queue_with_the_ads_api_limit(values):
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert values["dagsterDaemon"]["enabled"] and coordinator["enabled"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    # the limits live under `concurrency.runs`; the chart fails when both places set them
    queued = coordinator["config"]["queuedRunCoordinator"]
    assert queued.get("maxConcurrentRuns") is None and not queued.get("tagConcurrencyLimits")
    concurrency = values["concurrency"]
    assert concurrency["enabled"] is True
    assert isinstance(concurrency["runs"]["maxConcurrentRuns"], int) and concurrency["runs"]["maxConcurrentRuns"] > 0
    assert concurrency["runs"]["tagConcurrencyLimits"] == [ADS_API_LIMIT]
    # the same limits as the single-machine instance config
    instance = _instance_doc()["concurrency"]
    assert concurrency["runs"]["tagConcurrencyLimits"] == instance["runs"]["tag_concurrency_limits"]
    assert concurrency["pools"]["defaultLimit"] == instance["pools"]["default_limit"]
    assert concurrency["pools"]["granularity"] == instance["pools"]["granularity"]
    assert values["dagsterDaemon"]["runMonitoring"]["enabled"] is True
    assert values["retention"]["enabled"] is True
    assert values["postgresql"]["enabled"] is False
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"


def test_helm_code_server_serves_the_location_workspace_yaml_loads(values):
    (entry,) = yaml.safe_load(WORKSPACE.read_text())["load_from"]
    module = entry["python_module"]
    user = values["dagster-user-deployments"]
    assert user["enabled"] and user["enableSubchart"]
    (deployment,) = user["deployments"]
    assert deployment["name"] == module["location_name"]  # the chart's workspace names the location so
    assert deployment["dagsterApiGrpcArgs"] == ["-m", module["module_name"]]
    assert deployment["image"]["repository"] == "registry.example.com/gridcat"
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True


def _secret_names(node: Any) -> list[str]:
    return [ref["name"] for ref in node or []]


def test_helm_secrets_are_referenced_by_name(values):
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert "gridcat-env" in _secret_names(deployment["envSecrets"])
    assert "gridcat-env" in _secret_names(values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"])
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]
    assert _literal_secrets(values) == []


SENSITIVE_KEY = re.compile(r"password|passwd|token|secret|credential|private.?key", re.I)
URL_WITH_PASSWORD = re.compile(r"\w+://[^/\s:@]+:[^/\s@]+@")
# the variables that hold a secret in gridcat (config.SECRET_VARIABLES) and Dagster's PG password
SECRET_ENV = {*SECRET_VARIABLES, "DAGSTER_PG_PASSWORD"}


def _literal_secrets(doc: Any) -> list[str]:
    """Places in ``doc`` that hold a secret value rather than a reference to a Secret."""
    found = []
    for path, node in _walk(doc):
        where = ".".join(path)
        if isinstance(node, str) and URL_WITH_PASSWORD.search(node):
            found.append(f"{where}: URL with a password")
        if isinstance(node, str) and path[-2:] == ("envVars", "*") and node.split("=", 1)[0] in SECRET_ENV:
            found.append(f"{where}: secret in envVars")  # the K8sRunLauncher's "NAME=value" entries
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            is_reference = str(key).lower().endswith("secretname")  # the *name* of a Secret
            literal = isinstance(value, str | int | float) and not isinstance(value, bool) and value != ""
            if SENSITIVE_KEY.search(str(key)) and literal and not is_reference:
                found.append(f"{where}.{key}: literal value")
        if path and path[-1] == "env":  # env as a mapping: {NAME: value}
            found += [f"{where}.{name}: secret in env" for name in node if name in SECRET_ENV]
        if path[-2:] == ("env", "*") and node.get("name") in SECRET_ENV and "value" in node:
            found.append(f"{where}.{node['name']}: secret in env")  # env as a list of {name, value}
    return found


def test_the_literal_secret_check_finds_literal_secrets():
    """The check above is not vacuous: each of these is a secret written into values."""
    leaks = {
        "postgresql": {"postgresqlPassword": "hunter2"},
        "deployments": [{"env": [{"name": "GOOGLE_ADS_DEVELOPER_TOKEN", "value": "abc"}]}],
        "daemon": {"env": {"GRIDCAT_DB_URL": "sqlite:///x.db"}},
        "runs": {"envVars": ["GOOGLE_ADS_REFRESH_TOKEN=abc"]},
        "params": {"url": "postgresql://gridcat:s3cret@db:5432/warehouse"},
        "rabbitmq": {"rabbitmq": {"password": "guest"}},
    }
    assert len(_literal_secrets(leaks)) == len(leaks)
    references = {
        "global": {"postgresqlSecretName": "dagster-postgresql-secret"},
        "generatePostgresqlPasswordSecret": False,
        "envSecrets": [{"name": "gridcat-env"}],
        "env": [{"name": "GRIDCAT_SOURCE", "value": "google_ads"}],
        "postgresql": {"postgresqlPassword": ""},
    }
    assert _literal_secrets(references) == []


# ------------------------------------------------------------------------------------------------
# Optional: the full schema of a chart unpacked next to this machine (no network, no helm here)


def _coalesce(defaults: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of user values into chart defaults: maps merge, lists replace, null deletes."""
    merged = copy.deepcopy(defaults)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _coalesce(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _schema_errors(schema_file: Path, doc: dict[str, Any]) -> list[str]:
    import jsonschema

    schema = json.loads(schema_file.read_text())
    for _, node in _walk(schema):  # offline: Kubernetes object schemas are remote references
        if isinstance(node, dict) and str(node.get("$ref", "")).startswith("http"):
            del node["$ref"]
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


def test_helm_values_against_an_unpacked_chart(values):
    chart = os.environ.get("GRIDCAT_DAGSTER_CHART_DIR")
    if not chart:
        pytest.skip("set GRIDCAT_DAGSTER_CHART_DIR to an unpacked dagster chart (helm pull ... --untar)")
    chart_dir = Path(chart)
    merged = _coalesce(yaml.safe_load((chart_dir / "values.yaml").read_text()), values)
    assert _schema_errors(chart_dir / "values.schema.json", merged) == []
    sub = chart_dir / "charts" / "dagster-user-deployments"
    sub_values = _coalesce(yaml.safe_load((sub / "values.yaml").read_text()), merged["dagster-user-deployments"])
    sub_values["global"] = _coalesce(sub_values.get("global") or {}, merged["global"])
    assert _schema_errors(sub / "values.schema.json", sub_values) == []
