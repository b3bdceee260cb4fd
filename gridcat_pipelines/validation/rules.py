"""Views of the rule registry kept for existing imports; the rules themselves are entries of
:mod:`gridcat_pipelines.validation.registry` (add or change a rule there, not here).

``RULES`` and the dicts are the shipped (default) registry; :func:`rules_for` and
:func:`columns_needed` read the active one.
"""

from __future__ import annotations

from gridcat_pipelines.feeds.models import FeedConfig
from gridcat_pipelines.validation.registry import (
    DEFAULT,
    METADATA_CONSISTENCY,
    ROW_SCHEMA,
    SCHEMA,
    active,
)

__all__ = [
    "METADATA_CONSISTENCY",
    "ROW_SCHEMA",
    "RULES",
    "RULE_DESCRIPTIONS",
    "RULE_UNITS",
    "SCHEMA",
    "STRUCTURAL_RULES",
    "columns_needed",
    "rules_for",
]

RULES: tuple[str, ...] = DEFAULT.names
STRUCTURAL_RULES: tuple[str, ...] = DEFAULT.structural
RULE_UNITS: dict[str, str] = {rule.name: rule.unit for rule in DEFAULT}
RULE_DESCRIPTIONS: dict[str, str] = {rule.name: rule.description for rule in DEFAULT}


def rules_for(feed: FeedConfig) -> tuple[str, ...]:
    """The names of the rules that apply to ``feed``, in registry order."""
    return active().names_for(feed)


def columns_needed(feed: FeedConfig, rule: str) -> tuple[str, ...]:
    """The columns rule ``rule`` reads in ``feed`` (it is skipped if one is missing or mistyped)."""
    return active()[rule].columns_of(feed)
