"""The Dagster events of one ingest run, per partition: a materialization of the raw and the
validated asset naming each customer and its verdict, and one check evaluation per rule (and
the ``pulled`` check) that fails when any customer of the partition failed it, naming them.

A partition that holds one customer (below the sharding threshold) keeps the metadata of a
single run (``run_id``, ``outcome``, ``state_status``, ...), so the UI reads as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import dagster as dg

from gridcat_pipelines.batch_ingest import PullResult
from gridcat_pipelines.validation.report import ValidationReport

PULLED_CHECK = "pulled"
_MAX_LISTED = 50  # customers named in a check's metadata; the rest are counted


def partition_events(
    partition_key: str,
    results: Sequence[PullResult],
    raw: dg.AssetKey,
    validated: dg.AssetKey,
    rule_names: Sequence[str],
    uri_of,
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckEvaluation]:
    """Every event of one partition's ``results`` (one feed, the partition's customers)."""
    pulled = [r for r in results if r.meta is not None]
    if pulled:
        yield dg.AssetMaterialization(raw, partition=partition_key, metadata=_raw_metadata(pulled, uri_of))
    errors = [r for r in results if r.error is not None]
    yield dg.AssetCheckEvaluation(
        asset_key=raw,
        check_name=PULLED_CHECK,
        passed=not errors,
        partition=partition_key,
        metadata={
            "customers": len(results),
            "failed": len(errors),
            "failures": dg.MetadataValue.json({r.task.customer.customer_id: r.error for r in errors[:_MAX_LISTED]}),
        },
        description=_first_lines(errors) if errors else f"{len(results)} customer(s) pulled",
    )
    done = [r for r in results if r.validated is not None]
    if not done:
        return
    yield dg.AssetMaterialization(validated, partition=partition_key, metadata=_validated_metadata(done))
    reports = [(r.task.customer.customer_id, r.validated.report) for r in done]
    for rule in rule_names:
        evaluation = rule_evaluation(partition_key, validated, rule, reports)
        if evaluation is not None:  # a rule every customer skipped gets none (Dagster shows it skipped)
            yield evaluation


def _raw_metadata(pulled: Sequence[PullResult], uri_of) -> dict:
    runs = {r.task.customer.customer_id: r.meta.run_id for r in pulled}
    rows = sum(r.meta.record_count for r in pulled)
    size = sum(f.bytes for r in pulled for f in r.meta.files)
    metadata: dict = {"customers": len(pulled), "rows": rows, "bytes": size, "runs": dg.MetadataValue.json(runs)}
    if len(pulled) == 1:
        (only,) = pulled
        meta, uri = only.meta, uri_of(only)
        metadata.update(
            {
                "run_id": meta.run_id,
                "path": dg.MetadataValue.path(uri),
                "files": len(meta.files),
                "schema_version": meta.schema_version,
                "source": meta.source_name or "",
                "summary": dg.MetadataValue.md(
                    f"**{meta.record_count}** rows of `{meta.query_name}` for customer `{meta.customer_id}` on "
                    f"{meta.logical_date}, run `{meta.run_id}` ({len(meta.files)} file(s), {size} bytes)."
                ),
            }
        )
    else:
        metadata["summary"] = dg.MetadataValue.md(
            f"**{rows}** rows for {len(pulled)} customers ({size} bytes); `runs` names each customer's run."
        )
    return metadata


def _validated_metadata(done: Sequence[PullResult]) -> dict:
    verdicts = {
        r.task.customer.customer_id: {
            "verdict": r.verdict,
            "run_id": r.validated.report.run_id,
            "state_status": r.validated.outcome.state.status,
            "authoritative_run_id": r.validated.outcome.state.current_run_id or "",
            "outcome": r.validated.outcome.outcome,
        }
        for r in done
    }
    failed = sorted(c for c, v in verdicts.items() if v["verdict"] != "passed")
    metadata: dict = {
        "status": "failed" if failed else "success",
        "customers": len(done),
        "failed_customers": dg.MetadataValue.json(failed[:_MAX_LISTED]),
        "verdicts": dg.MetadataValue.json(verdicts),
        "rows": sum(r.validated.report.record_count or 0 for r in done),
    }
    if len(done) == 1:
        (only,) = done
        report, state = only.validated.report, only.validated.outcome.state
        metadata.update(
            {
                "run_id": report.run_id,
                "outcome": only.validated.outcome.outcome,
                "state_status": state.status,
                "authoritative_run_id": state.current_run_id or "",
                "state_version": state.version,
                "error_message": state.error_message or "",
                "summary": dg.MetadataValue.md(rules_markdown(report)),
            }
        )
    else:
        lines = ["| customer | verdict | run | state |", "|---|---|---|---|"]
        for customer_id, v in sorted(verdicts.items(), key=lambda kv: (kv[1]["verdict"] == "passed", kv[0])):
            lines.append(f"| {customer_id} | {v['verdict']} | {v['run_id']} | {v['state_status']} |")
        metadata["summary"] = dg.MetadataValue.md("\n".join(lines))
    return metadata


def rule_evaluation(
    partition_key: str, validated: dg.AssetKey, rule: str, reports: Sequence[tuple[str, ValidationReport]]
) -> dg.AssetCheckEvaluation | None:
    """The rule's verdict over a partition's ``(customer_id, report)`` pairs: failed when any
    customer failed it, naming them; ``None`` when every customer skipped it (or none ran it)."""
    evaluated = [(c, report, report.result(rule)) for c, report in reports if _has_rule(report, rule)]
    evaluated = [(c, report, rr) for c, report, rr in evaluated if not rr.skipped]
    if not evaluated:
        return None
    failing = [(c, report, rr) for c, report, rr in evaluated if not rr.passed]
    metadata: dict = {"customers": len(evaluated), "failing_customers": len(failing)}
    if len(reports) == 1:
        metadata["run_id"] = reports[0][1].run_id
        rr = evaluated[0][2]
        metadata.update({"failing_rows": rr.failing_rows, "message": rr.message})
        if rr.samples:
            metadata["sample_rows"] = dg.MetadataValue.json(json.loads(json.dumps(rr.samples, default=str)))
    if failing:
        metadata["failures"] = dg.MetadataValue.json(
            {
                c: {"run_id": report.run_id, "failing_rows": rr.failing_rows, "message": rr.message}
                for c, report, rr in failing[:_MAX_LISTED]
            }
        )
    description = (
        "; ".join(f"{c}: {rr.message}" for c, _, rr in failing[:3])
        if failing
        else (evaluated[0][2].message if len(evaluated) == 1 else f"{len(evaluated)} customer(s) passed")
    )
    return dg.AssetCheckEvaluation(
        asset_key=validated,
        check_name=rule,
        passed=not failing,
        partition=partition_key,
        metadata=metadata,
        description=description or None,
    )


def _has_rule(report: ValidationReport, rule: str) -> bool:
    return any(r.rule == rule for r in report.rules)


def _first_lines(errors: Sequence[PullResult]) -> str:
    return "; ".join(f"{r.task.customer.customer_id}: {r.error}" for r in errors[:3]) + (
        f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    )


def rules_markdown(report: ValidationReport) -> str:
    """The report as a markdown table of rules."""
    lines = ["| rule | result | failing rows | message |", "|---|---|---|---|"]
    for rule in report.rules:
        verdict = "skipped" if rule.skipped else ("pass" if rule.passed else "**FAIL**")
        message = rule.message.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {rule.rule} | {verdict} | {rule.failing_rows} | {message} |")
    return "\n".join(lines)
