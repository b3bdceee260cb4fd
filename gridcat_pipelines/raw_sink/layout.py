"""Where a raw run lives under the sink root (paths relative to the root, ``/``-separated)::

    source=<source>/customer_id=<id>/query_name=<q>/logical_date=<YYYY-MM-DD>/run_id=<uuid7>/
        part-00000.parquet
        part-00001.parquet
        ...
        metadata.json          # written last; its presence means the run is complete

While ``metadata.json`` is being committed a ``metadata.json.tmp-<random>`` may exist briefly
(local filesystems only; see :mod:`gridcat_pipelines.raw_sink.sink`).
"""

from __future__ import annotations

import re
import secrets
from datetime import date, datetime

from gridcat_pipelines.errors import GridcatError, invalid_argument
from gridcat_pipelines.run_ids import parse_run_id
from gridcat_pipelines.state.keys import PartitionKey

METADATA_FILE = "metadata.json"
METADATA_TMP_PREFIX = METADATA_FILE + ".tmp-"
PARTITION_LEVELS = ("source", "customer_id", "query_name", "logical_date")
RUN_LEVEL = "run_id"

_PART_RE = re.compile(r"^part-[0-9]{5,}\.parquet$")


def check_key(key: PartitionKey) -> PartitionKey:
    """``key`` itself if every field is already in normal form, else ``INVALID_ARGUMENT``.

    Guards the paths: a hand-built key with ``../`` or an unnormalised customer id never
    becomes a directory name.
    """
    if isinstance(key.logical_date, datetime) or not isinstance(key.logical_date, date):
        raise invalid_argument(f"logical_date {key.logical_date!r} must be a date")
    parsed = PartitionKey.parse(key.customer_id, key.query_name, key.logical_date, key.source)
    if parsed != key:
        raise invalid_argument(f"partition key {key} is not normalised (expected {parsed})")
    return key


def partition_dir(key: PartitionKey) -> str:
    """The partition's directory relative to the root (all runs of ``key`` live below it)."""
    check_key(key)
    values = (key.source, key.customer_id, key.query_name, key.logical_date.isoformat())
    return "/".join(f"{level}={value}" for level, value in zip(PARTITION_LEVELS, values))


def run_dir_name(run_id: str) -> str:
    """The run directory's own name, ``run_id=<uuid7>`` (the id is validated)."""
    return f"{RUN_LEVEL}={parse_run_id(run_id)}"


def run_dir(key: PartitionKey, run_id: str) -> str:
    """The run's directory relative to the root."""
    return f"{partition_dir(key)}/{run_dir_name(run_id)}"


def part_file_name(index: int) -> str:
    """The name of the ``index``-th data file: ``part-00000.parquet``, ``part-00001.parquet``, ..."""
    if index < 0:
        raise ValueError("part file index must be >= 0")
    return f"part-{index:05d}.parquet"


def check_part_file_name(name: str) -> str:
    """``name`` if it is a data file name this layout produces, else ``ValueError``.

    Metadata may only point at files directly inside its run directory.
    """
    if not _PART_RE.match(name):
        raise ValueError(f"{name!r} is not a part file name (part-NNNNN.parquet)")
    return name


def metadata_tmp_name() -> str:
    """A fresh temporary name for ``metadata.json`` before its atomic rename."""
    return METADATA_TMP_PREFIX + secrets.token_hex(8)


def parse_level(name: str, level: str) -> str | None:
    """The value of a ``<level>=<value>`` directory name, or None if it is not one."""
    prefix = level + "="
    return name[len(prefix) :] if name.startswith(prefix) and len(name) > len(prefix) else None


def parse_run_dir_name(name: str) -> str | None:
    """The run id of a ``run_id=<uuid7>`` directory name; None if not a canonical UUIDv7."""
    value = parse_level(name, RUN_LEVEL)
    if value is None:
        return None
    try:
        run_id = parse_run_id(value)
    except GridcatError:
        return None
    return run_id if run_id == value else None


def parse_partition_values(values: tuple[str, str, str, str]) -> PartitionKey | None:
    """The key whose directory holds ``(source, customer_id, query_name, logical_date)`` values.

    None when the values are not a normalised key (a stray directory is skipped, not fatal).
    """
    source, customer_id, query_name, logical_date = values
    try:
        key = PartitionKey.parse(customer_id, query_name, logical_date, source)
    except GridcatError:
        return None
    return key if key.customer_id == customer_id else None
