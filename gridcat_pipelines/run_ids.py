"""Run identifiers: UUIDv7 strings (RFC 9562) that sort by creation time.

A run id names one immutable raw run directory. Its canonical form is the lowercase
hyphenated UUID; the first 48 bits are the Unix time in milliseconds, so comparing two
canonical strings compares their creation times. Within one millisecond this generator
keeps a 12-bit counter in ``rand_a`` (RFC 9562 §6.2, method 1), so ids made by one process
are strictly increasing.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from datetime import UTC, datetime

from gridcat_pipelines.errors import invalid_argument

_UUID7_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

_lock = threading.Lock()
_last_ms = -1
_counter = 0


def new_run_id() -> str:
    """Return a new UUIDv7 string, greater than every id this process returned before."""
    global _last_ms, _counter
    with _lock:
        ms = int(time.time() * 1000)
        if ms <= _last_ms:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted in this millisecond: borrow the next one
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        else:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave headroom
        return _compose(ms, _counter)


def run_id_at(ms: int) -> str:
    """A UUIDv7 for the Unix time ``ms`` (milliseconds), e.g. to name a backdated run in tests."""
    return _compose(ms, int.from_bytes(os.urandom(2), "big") & 0xFFF)


def _compose(ms: int, counter: int) -> str:
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand_b
    return str(uuid.UUID(int=value))


def parse_run_id(value: str) -> str:
    """Validate a run id and return its canonical (lowercase) form.

    Raises ``INVALID_ARGUMENT`` unless ``value`` is a UUIDv7 with the RFC 9562 variant.
    """
    if not isinstance(value, str):
        raise invalid_argument(f"run_id must be a string, got {type(value).__name__}")
    canonical = value.strip().lower()
    if not _UUID7_RE.match(canonical):
        raise invalid_argument(
            f"run_id {value!r} is not a UUIDv7 (RFC 9562): expected xxxxxxxx-xxxx-7xxx-[89ab]xxx-xxxxxxxxxxxx"
        )
    return canonical


def run_id_millis(run_id: str) -> int:
    """The Unix time in milliseconds encoded in a UUIDv7 run id (any 48-bit value)."""
    return int(parse_run_id(run_id).replace("-", "")[:12], 16)


def run_id_created_at(run_id: str) -> datetime:
    """The creation time encoded in a UUIDv7 run id (millisecond precision, UTC); a time past
    the year 9999 is clamped to ``datetime.max`` (such ids are refused when recorded)."""
    ms = run_id_millis(run_id)
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, ValueError, OSError):
        return datetime.max.replace(tzinfo=UTC)
