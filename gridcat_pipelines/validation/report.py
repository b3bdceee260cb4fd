"""The outcome of validating one raw run: one :class:`RuleResult` per rule, and the report.

A rule is *passed*, *failed* or *skipped*. A skipped rule (a column it needs is missing or
mistyped, or the run could not be read at all) is neither a pass nor a failure: ``passed``
is ``False`` and ``skipped`` is ``True``, so always test ``skipped`` (or use ``outcome`` /
``failed``) before reading ``passed``. The Dagster layer emits no asset check result for a
skipped rule.

A rule's check returns a :class:`Verdict` (what it found, without its name); the validator
names it with :meth:`RuleResult.of`. Rule names, units, order and which rules are structural
come from the rule registry (:mod:`gridcat_pipelines.validation.registry`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gridcat_pipelines.state.keys import PartitionKey
from gridcat_pipelines.state.models import ValidationResult
from gridcat_pipelines.validation import registry
from gridcat_pipelines.validation.verdict import FAILED, MAX_SAMPLES, PASSED, SKIPPED, Verdict, check_outcome

__all__ = ["FAILED", "MAX_SAMPLES", "PASSED", "SKIPPED", "RuleResult", "ValidationReport", "Verdict"]


@dataclass(frozen=True)
class RuleResult:
    """The verdict of one rule on one run.

    ``failing_rows`` counts what the rule counts (rows; columns for ``schema``; problems for
    ``metadata_consistency``) and is 0 unless the rule failed. ``samples`` holds up to
    :data:`MAX_SAMPLES` JSON-safe examples of what failed.
    """

    rule: str
    passed: bool
    skipped: bool = False
    failing_rows: int = 0
    message: str = ""
    samples: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.rule not in registry.active().by_name:
            raise ValueError(f"unknown rule {self.rule!r}")
        check_outcome(self.passed, self.skipped, self.failing_rows)

    @classmethod
    def of(cls, rule: str, verdict: Verdict) -> RuleResult:
        """``verdict`` as the result of rule ``rule``."""
        return cls(
            rule=rule,
            passed=verdict.passed,
            skipped=verdict.skipped,
            failing_rows=verdict.failing_rows,
            message=verdict.message,
            samples=list(verdict.samples)[:MAX_SAMPLES],
        )

    @classmethod
    def ok(cls, rule: str, message: str = "") -> RuleResult:
        """A passed rule."""
        return cls(rule=rule, passed=True, message=message)

    @classmethod
    def fail(cls, rule: str, count: int, message: str, samples: list[dict[str, Any]] | None = None) -> RuleResult:
        """A failed rule with its failing count (at least 1)."""
        return cls(
            rule=rule,
            passed=False,
            failing_rows=max(int(count), 1),
            message=message,
            samples=list(samples or [])[:MAX_SAMPLES],
        )

    @classmethod
    def skip(cls, rule: str, reason: str) -> RuleResult:
        """A skipped rule: it could not run, which is neither a pass nor a failure."""
        return cls(rule=rule, passed=False, skipped=True, message=reason)

    @property
    def failed(self) -> bool:
        """Whether the rule ran and failed."""
        return not self.passed and not self.skipped

    @property
    def outcome(self) -> str:
        """``passed``, ``failed`` or ``skipped``."""
        return SKIPPED if self.skipped else PASSED if self.passed else FAILED

    def summary(self) -> str:
        """``"row_schema: 3 rows"``: the rule and its failing count with the count's unit."""
        unit = registry.active()[self.rule].unit
        return f"{self.rule}: {self.failing_rows} {unit}{'' if self.failing_rows == 1 else 's'}"

    def to_json(self) -> dict[str, Any]:
        """The result as plain JSON."""
        return {
            "rule": self.rule,
            "outcome": self.outcome,
            "passed": self.passed,
            "skipped": self.skipped,
            "failing_rows": self.failing_rows,
            "message": self.message,
            "samples": self.samples,
        }


@dataclass(frozen=True)
class ValidationReport:
    """Every applicable rule's verdict on one raw run of one partition.

    ``schema_version`` is the run's (from its metadata; ``None`` if it has none) and
    ``record_count`` the number of rows validated (the metadata's count if the data could
    not be read, ``None`` if neither is known).
    """

    key: PartitionKey
    run_id: str
    schema_version: str | None
    record_count: int | None
    rules: tuple[RuleResult, ...]
    duration_s: float = 0.0

    def __post_init__(self) -> None:
        names = [r.rule for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate rules in report: {names}")
        order = registry.active().index
        if names != sorted(names, key=order.__getitem__):
            raise ValueError(f"rules out of order: {names}")

    def result(self, rule: str) -> RuleResult:
        """The result of ``rule`` (KeyError if the rule does not apply to this feed)."""
        for r in self.rules:
            if r.rule == rule:
                return r
        raise KeyError(rule)

    @property
    def passed(self) -> bool:
        """Whether the run is valid: ``schema`` and ``metadata_consistency`` ran and passed,
        and no other rule failed (skipped rules are not failures)."""
        ran = {r.rule: r for r in self.rules}
        if any(rule not in ran or not ran[rule].passed for rule in registry.active().structural):
            return False
        return not any(r.failed for r in self.rules)

    @property
    def failed_rules(self) -> tuple[RuleResult, ...]:
        """The rules that ran and failed, in registry order."""
        return tuple(r for r in self.rules if r.failed)

    @property
    def skipped_rules(self) -> tuple[RuleResult, ...]:
        """The rules that could not run, in registry order."""
        return tuple(r for r in self.rules if r.skipped)

    def error_message(self, *, detail: bool = False) -> str | None:
        """``"row_schema: 3 rows; primary_key_unique: 2 rows"``: each failed rule and its count.

        ``None`` for a passing report. With ``detail=True`` each clause is followed by the
        rule's message in parentheses. If no rule failed yet the report does not pass (a
        structural rule was skipped), the skipped structural rules are named instead.
        """
        if self.passed:
            return None
        clauses = [r.summary() + (f" ({r.message})" if detail and r.message else "") for r in self.failed_rules]
        if not clauses:
            clauses = [
                f"{r.rule}: skipped ({r.message})" for r in self.skipped_rules if r.rule in registry.active().structural
            ]
            clauses = clauses or ["no structural rule ran"]
        return "; ".join(clauses)

    def to_validation_result(
        self, tags: dict[str, str] | None = None, idempotency_key: str | None = None
    ) -> ValidationResult:
        """The state store's write input for this verdict (checked and normalised)."""
        passed = self.passed
        return ValidationResult(
            key=self.key,
            run_id=self.run_id,
            status="success" if passed else "failed",
            schema_version=self.schema_version,
            record_count=self.record_count,
            error_message=None if passed else self.error_message(),
            tags=tags,
            idempotency_key=idempotency_key,
        ).validated()

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON (``json.dumps``-safe)."""
        return {
            **self.key.to_json(),
            "run_id": self.run_id,
            "schema_version": self.schema_version,
            "record_count": self.record_count,
            "passed": self.passed,
            "error_message": self.error_message(),
            "duration_s": round(self.duration_s, 6),
            "rules": [r.to_json() for r in self.rules],
        }

    def to_json_text(self) -> str:
        """:meth:`to_json` serialised (sorted keys)."""
        return json.dumps(self.to_json(), sort_keys=True)
