"""The logical partition key and the checks that every value entering the store passes.

Values are normalised at the edge (``123-456-7890`` becomes ``1234567890``); anything that
cannot be normalised is ``INVALID_ARGUMENT`` and never reaches the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from gridcat_pipelines.errors import invalid_argument

DEFAULT_SOURCE = "google_ads"
STATUSES = ("pending", "success", "failed")
RESULT_STATUSES = ("success", "failed")

_CUSTOMER_RE = re.compile(r"^[0-9]+(-[0-9]+)*$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_TAG_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,127}$")
MAX_TAG_VALUE_LEN = 1024
MAX_TAGS = 64
MAX_TEXT_LEN = 8192


def normalize_customer_id(value: object) -> str:
    """Digits-only customer id; hyphen groups (``123-456-7890``) are joined, anything else rejected."""
    text = str(value).strip() if isinstance(value, (str, int)) else None
    if not text or not _CUSTOMER_RE.match(text) or len(text) > 32:
        raise invalid_argument(
            f"customer_id {value!r} is not a customer id: digits only, optionally grouped by hyphens"
        )
    return text.replace("-", "")


def parse_name(value: object, field: str) -> str:
    """A source or query name: lowercase letters, digits and underscores, starting with a letter."""
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise invalid_argument(f"{field} {value!r} must match ^[a-z][a-z0-9_]{{0,62}}$")
    return value


def parse_date(value: object, field: str = "logical_date") -> date:
    """A calendar date written ``YYYY-MM-DD`` (a ``date`` passes through)."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise invalid_argument(f"{field} {value!r} is not a date in YYYY-MM-DD form")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise invalid_argument(f"{field} {value!r} is not a valid calendar date") from None


def parse_status(value: object, allowed: tuple[str, ...] = RESULT_STATUSES) -> str:
    """A status word from ``allowed``."""
    if value not in allowed:
        raise invalid_argument(f"status {value!r} must be one of {', '.join(allowed)}")
    return str(value)


def parse_tags(value: object) -> dict[str, str]:
    """A flat map of tag keys to string values."""
    if not isinstance(value, dict):
        raise invalid_argument("tags must be a map of strings to strings")
    if len(value) > MAX_TAGS:
        raise invalid_argument(f"at most {MAX_TAGS} tags, got {len(value)}")
    tags: dict[str, str] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not _TAG_KEY_RE.match(key):
            raise invalid_argument(f"tag key {key!r} must match {_TAG_KEY_RE.pattern}")
        if not isinstance(val, str) or len(val) > MAX_TAG_VALUE_LEN:
            raise invalid_argument(f"tag {key!r} needs a string value of at most {MAX_TAG_VALUE_LEN} characters")
        tags[key] = val
    return dict(sorted(tags.items()))


def parse_tag_pairs(pairs: list[str] | None) -> dict[str, str] | None:
    """``["team=core", "env=prod"]`` as a tag map; ``None`` when no pair was given."""
    if not pairs:
        return None
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, val = pair.partition("=")
        if not sep:
            raise invalid_argument(f"tag {pair!r} must be written key=value")
        tags[key] = val
    return parse_tags(tags)


def check_text(value: object, field: str) -> str | None:
    """Optional free text, bounded in length."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT_LEN:
        raise invalid_argument(f"{field} must be text of at most {MAX_TEXT_LEN} characters")
    return value


@dataclass(frozen=True, order=True)
class PartitionKey:
    """``(source, customer_id, query_name, logical_date)``: the smallest independent slice of work."""

    source: str
    customer_id: str
    query_name: str
    logical_date: date

    @classmethod
    def parse(
        cls,
        customer_id: object,
        query_name: object,
        logical_date: object,
        source: object = DEFAULT_SOURCE,
    ) -> PartitionKey:
        """Build a key from user input, normalising and validating every field."""
        return cls(
            source=parse_name(source, "source"),
            customer_id=normalize_customer_id(customer_id),
            query_name=parse_name(query_name, "query_name"),
            logical_date=parse_date(logical_date),
        )

    def as_tuple(self) -> tuple[str, str, str, date]:
        """The key as a tuple in primary-key order."""
        return (self.source, self.customer_id, self.query_name, self.logical_date)

    def to_json(self) -> dict[str, str]:
        """The key's fields with the date as ``YYYY-MM-DD``."""
        return {
            "source": self.source,
            "customer_id": self.customer_id,
            "query_name": self.query_name,
            "logical_date": self.logical_date.isoformat(),
        }

    def __str__(self) -> str:
        return f"{self.source}/{self.customer_id}/{self.query_name}/{self.logical_date.isoformat()}"
