"""What one rule's check found on one run, before the validator names it: :class:`Verdict`.

The rule checks (``business_rules``, ``json_schema``, ``structural_checks``) return verdicts;
``report`` turns them into named :class:`~gridcat_pipelines.validation.report.RuleResult` s.
This module knows no rule and imports nothing of the validation package, so the registry can
import the checks and the report can import the registry without a loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_SAMPLES = 5

PASSED = "passed"
FAILED = "failed"
SKIPPED = "skipped"


def check_outcome(passed: bool, skipped: bool, failing_rows: int) -> None:
    """``ValueError`` for an impossible outcome (a skipped pass, failing rows on a pass)."""
    if skipped and passed:
        raise ValueError("a skipped rule is not a pass")
    if (passed or skipped) and failing_rows:
        raise ValueError("only a failed rule has failing rows")
    if failing_rows < 0:
        raise ValueError("failing_rows must be >= 0")


@dataclass(frozen=True)
class Verdict:
    """What one rule's check found on one run, before it is named (see :class:`RuleResult`)."""

    passed: bool
    skipped: bool = False
    failing_rows: int = 0
    message: str = ""
    samples: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_outcome(self.passed, self.skipped, self.failing_rows)

    @classmethod
    def ok(cls, message: str = "") -> Verdict:
        """The rule passed."""
        return cls(passed=True, message=message)

    @classmethod
    def fail(cls, count: int, message: str, samples: list[dict[str, Any]] | None = None) -> Verdict:
        """The rule failed, with its failing count (at least 1) and up to MAX_SAMPLES samples."""
        return cls(
            passed=False, failing_rows=max(int(count), 1), message=message, samples=list(samples or [])[:MAX_SAMPLES]
        )

    @classmethod
    def skip(cls, reason: str) -> Verdict:
        """The rule could not run."""
        return cls(passed=False, skipped=True, message=reason)

    @property
    def failed(self) -> bool:
        """Whether the rule ran and failed."""
        return not self.passed and not self.skipped

    @property
    def outcome(self) -> str:
        """``passed``, ``failed`` or ``skipped``."""
        return SKIPPED if self.skipped else PASSED if self.passed else FAILED
