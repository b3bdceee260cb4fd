"""Running gridcat's jobs in the CLI process, on the shared local instance (no daemon needed).

``gridcat pull`` and ``gridcat demo`` use these: the runs land in the same Dagster instance
``dagster dev`` shows, and the sensor is evaluated the way the daemon evaluates it.

Dagster's console logger prints every failed step with its full stack trace; by default these
runs hide it (``verbose=0``) and :func:`step_failures` turns the run's ``STEP_FAILURE`` events
into one line each (the asset, the partition, the reason, and the Dagster run that holds the
full trace). ``verbose=1`` (``-v``) shows the console logger's warnings and errors with their
traces again, ``verbose=2`` (``-vv``) its info lines too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import dagster as dg

from gridcat_pipelines.customer_groups import CustomerGroups
from gridcat_pipelines.defs.gate.sensors import GATE_SENSOR_NAME, WAREHOUSE_JOB_NAME
from gridcat_pipelines.defs.ingestion.assets import raw_key, validated_key
from gridcat_pipelines.defs.ingestion.jobs import INGEST_JOB_NAME
from gridcat_pipelines.defs.ingestion.partitions import CUSTOMERS_PARTITION, partition_key
from gridcat_pipelines.defs.ingestion.run_scope import CUSTOMERS_TAG, customer_groups
from gridcat_pipelines.errors import failed_precondition

# The console logger's level per verbosity: CRITICAL hides Dagster's ERROR step failures
# (with their stack traces); the failed steps are reported by step_failures instead.
_CONSOLE_LEVELS = ("CRITICAL", "WARNING", "INFO")
QUIET = {"loggers": {"console": {"config": {"log_level": _CONSOLE_LEVELS[0]}}}}


def console_config(verbose: int = 0) -> dict:
    """The run config of an in-process run's console logger for ``verbose`` (0, 1 = -v, 2 = -vv)."""
    level = _CONSOLE_LEVELS[max(0, min(verbose, len(_CONSOLE_LEVELS) - 1))]
    return {"loggers": {"console": {"config": {"log_level": level}}}}


@dataclass(frozen=True)
class StepFailure:
    """One failed step of a Dagster run, as one line for people."""

    step: str  # the asset key(s) the step materializes (``google_ads/raw/campaign``), else its step key
    partition: str | None
    reason: str  # the first line of the user error: the injected fault, the failed rule, the exception
    dagster_run_id: str
    cause: str | None = None  # the class of the innermost exception, when the reason does not name it

    def line(self) -> str:
        """``failed: <asset> <partition>: <reason> [<cause>] (full trace: dagster run <id>)``."""
        where = f"{self.step} {self.partition}" if self.partition else self.step
        cause = f" [{self.cause}]" if self.cause else ""
        return f"failed: {where}: {self.reason}{cause} (full trace: dagster run {self.dagster_run_id})"


@dataclass(frozen=True)
class RunReport:
    """What the CLI reports of one in-process run (picklable, for the demo's worker processes)."""

    dagster_run_id: str
    success: bool
    failures: tuple[StepFailure, ...] = ()


def report_of(result: dg.ExecuteInProcessResult) -> RunReport:
    """The run's id, success and failed steps."""
    return RunReport(result.run_id, result.success, tuple(step_failures(result)))


def step_failures(result: dg.ExecuteInProcessResult) -> list[StepFailure]:
    """One :class:`StepFailure` per ``STEP_FAILURE`` event of the run; a failed run without any
    (e.g. a resource that did not initialize) gets one for the run itself."""
    partition = result.dagster_run.tags.get("dagster/partition")
    failures: list[StepFailure] = []
    for event in result.all_events:
        if event.event_type != dg.DagsterEventType.STEP_FAILURE:
            continue
        reason, cause = _reason(event.event_specific_data, event.message)
        step = _assets_of(result, event) or event.step_key or "?"
        failures.append(StepFailure(step, partition, reason, result.run_id, cause))
    if not failures and not result.success:
        run_failure = next((e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE), None)
        data = run_failure.event_specific_data if run_failure else None
        reason, cause = _reason(data, run_failure.message if run_failure else None)
        failures.append(StepFailure(result.job_def.name, partition, reason, result.run_id, cause))
    return failures


def _assets_of(result: dg.ExecuteInProcessResult, event: dg.DagsterEvent) -> str:
    """The asset keys the failed step materializes, ``a/b/c, ...`` (empty: an op, not an asset)."""
    try:
        keys = result.job_def.asset_layer.get_selected_entity_keys_for_node(event.node_handle)
    except Exception:  # noqa: BLE001 - an op outside any asset, or an older asset layer
        return ""
    return ", ".join(sorted(k.to_user_string() for k in keys if isinstance(k, dg.AssetKey)))


_CLASS_PREFIX = re.compile(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*: )")


def _reason(data: object, message: str | None) -> tuple[str, str | None]:
    """The first line of the user error and the innermost exception's class (when not in it).

    Dagster wraps an exception raised in an op in ``DagsterExecutionStepExecutionError`` (and
    the like); the user error is the first error of the chain that is not such a wrapper. A
    ``dg.Failure`` gives its description.
    """
    failure = getattr(data, "user_failure_data", None)
    error = getattr(data, "error", None)
    while error is not None and error.cause is not None and error.cls_name.startswith("Dagster"):
        error = error.cause
    if failure is not None and failure.description:
        reason = failure.description
    elif error is not None and error.message:
        reason = _CLASS_PREFIX.sub("", error.message.strip())  # "pkg.mod.ValueError: x" -> "ValueError: x"
    else:
        reason = message or "failed (see the run)"
    reason = next((ln.strip() for ln in reason.splitlines() if ln.strip()), "failed (see the run)")
    root = error
    while root is not None and root.cause is not None:
        root = root.cause
    cause = root.cls_name if root is not None and root is not error and root.cls_name else None
    return reason, (cause if cause and cause not in reason else None)


@dataclass(frozen=True)
class PullOutcome:
    """One partition pulled and validated: the new run and what recording it did."""

    run_id: str
    outcome: str
    dagster_run_id: str


def ensure_customer_partitions(
    instance: dg.DagsterInstance, customer_ids: list[str], groups: CustomerGroups | None = None
) -> None:
    """Add the partitions of these customers' groups (the customers themselves without
    ``groups`` or below the sharding threshold) that do not exist yet."""
    existing = set(instance.get_dynamic_partitions(CUSTOMERS_PARTITION))
    keys = customer_ids if groups is None else sorted({groups.group_of(c) for c in customer_ids})
    new = [k for k in keys if k not in existing]
    if new:
        instance.add_dynamic_partitions(CUSTOMERS_PARTITION, new)


def groups_of(defs: dg.Definitions) -> CustomerGroups:
    """The customer groups of the definitions' pipeline config."""
    return customer_groups(defs.resources["pipeline_config"].config)


def run_ingest(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    customer_id: str,
    day: date,
    feed_names: list[str] | None = None,
    verbose: int = 0,
) -> dg.ExecuteInProcessResult:
    """Run the ingest job for one customer-day (its group's partition, narrowed to the customer
    by the ``gridcat/customers`` tag): every feed, or only ``feed_names``."""
    selection = None
    if feed_names is not None:
        selection = [key for name in feed_names for key in (raw_key(name), validated_key(name))]
    groups = groups_of(defs)
    ensure_customer_partitions(instance, [customer_id], groups)
    return defs.resolve_job_def(INGEST_JOB_NAME).execute_in_process(
        partition_key=partition_key(groups.group_of(customer_id), day),
        instance=instance,
        tags={CUSTOMERS_TAG: customer_id},
        asset_selection=selection,
        raise_on_error=False,
        run_config=console_config(verbose),
    )


def pull_one(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    customer_id: str,
    feed: str,
    day: date,
    *,
    verbose: int = 0,
    on_failure: Callable[[StepFailure], None] | None = None,
) -> PullOutcome:
    """Re-extract and re-validate one partition (a new raw run, never an overwrite).

    Each failed step goes to ``on_failure`` before the ``FAILED_PRECONDITION`` error is raised.
    """
    result = run_ingest(defs, instance, customer_id, day, [feed], verbose=verbose)
    validated = [m for m in result.get_asset_materialization_events() if m.asset_key == validated_key(feed)]
    if not validated:
        failures = step_failures(result)
        for failure in failures if on_failure is not None else ():
            on_failure(failure)
        raise failed_precondition(
            f"pull of {feed} for {customer_id} on {day} did not complete "
            f"(Dagster run {result.run_id}): {'; '.join(f.reason for f in failures) or 'see the run'}",
            {"dagster_run_id": result.run_id},
        )
    meta = validated[-1].step_materialization_data.materialization.metadata
    return PullOutcome(run_id=meta["run_id"].value, outcome=meta["outcome"].value, dagster_run_id=result.run_id)


def evaluate_sensor(
    defs: dg.Definitions, instance: dg.DagsterInstance, sensor_name: str, cursor: str | None = None
) -> dg.SensorResult:
    """One tick of sensor ``sensor_name`` from ``cursor``, evaluated as the daemon would
    (its resources, the repository, dynamic partitions read from ``instance``)."""
    sensor = defs.resolve_sensor_def(sensor_name)
    with (
        dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            resources=defs.resources,
            repository_def=defs.get_repository_def(),
            sensor_name=sensor_name,
        ) as ctx,
        dg.partition_loading_context(dynamic_partitions_store=instance),
    ):
        return sensor.evaluate_tick(ctx)


def gate_tick(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """Evaluate the gate sensor once, as the daemon would, and store its new cursor."""
    cursor = instance.run_storage.get_cursor_values({_cursor_key()}).get(_cursor_key())
    result = evaluate_sensor(defs, instance, GATE_SENSOR_NAME, cursor)
    if result.cursor is not None:
        instance.run_storage.set_cursor_values({_cursor_key(): result.cursor})
    return list(result.run_requests or [])


def _cursor_key() -> str:
    """Where the CLI keeps its own gate cursor in the instance (apart from the daemon's tick cursor)."""
    return f"gridcat/local_cursor/{GATE_SENSOR_NAME}"


def run_load(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest) -> bool:
    """Execute one load the gate requested; ``True`` when the run succeeded."""
    return load(defs, instance, request).success


def load(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest, verbose: int = 0) -> RunReport:
    """Execute one load the gate requested (a partition or a range); its run id, success and
    failed steps."""
    result = defs.resolve_job_def(WAREHOUSE_JOB_NAME).execute_in_process(
        partition_key=request.partition_key if request.partition_key_range is None else None,
        instance=instance,
        tags=request.tags,
        asset_selection=request.asset_selection,
        raise_on_error=False,
        run_config=console_config(verbose),
    )
    return report_of(result)
