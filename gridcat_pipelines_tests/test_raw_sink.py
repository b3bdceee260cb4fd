"""The raw sink: layout, round trips, immutability, crash safety, atomic commit, verification."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from gridcat_pipelines.errors import (
    ALREADY_EXISTS,
    FAILED_PRECONDITION,
    INVALID_ARGUMENT,
    NOT_FOUND,
    GridcatError,
)
from gridcat_pipelines.raw_sink import RawSink, RunMetadata, StatsAccumulator, column_stats, layout, stats
from gridcat_pipelines.raw_sink.hll import HyperLogLog, hash_array
from gridcat_pipelines.run_ids import new_run_id, parse_run_id, run_id_at
from gridcat_pipelines.state.keys import PartitionKey

KEY = PartitionKey.parse("123-456-7890", "campaign", "2026-11-01")
OTHER_KEY = PartitionKey.parse("555", "ad_group", "2026-11-02")


def sample_table() -> pa.Table:
    """Nulls in every column; dates, ints, strings, doubles and an all-null column."""
    return pa.table(
        {
            "segments_date": pa.array([date(2026, 11, 1), None, date(2026, 10, 31), date(2026, 11, 1)], pa.date32()),
            "campaign_id": pa.array([3, 1, None, 2], pa.int64()),
            "campaign_name": pa.array(["b", None, "a", "b"], pa.string()),
            "metrics_cost": pa.array([1.5, -0.25, None, 2.0], pa.float64()),
            "all_null": pa.array([None] * 4, pa.string()),
        }
    )


EXPECTED_STATS = {
    "segments_date": {
        "null_count": 1,
        "min": "2026-10-31",
        "max": "2026-11-01",
        "distinct_estimate": 2,
        "distinct_exact": True,
    },
    "campaign_id": {"null_count": 1, "min": 1, "max": 3, "distinct_estimate": 3, "distinct_exact": True},
    "campaign_name": {"null_count": 1, "min": "a", "max": "b", "distinct_estimate": 2, "distinct_exact": True},
    "metrics_cost": {"null_count": 1, "min": -0.25, "max": 2.0, "distinct_estimate": 3, "distinct_exact": True},
    "all_null": {"null_count": 4, "min": None, "max": None, "distinct_estimate": 0, "distinct_exact": True},
}


def numbered_table(rows: int) -> pa.Table:
    return pa.table({"n": pa.array(range(rows), pa.int64()), "s": pa.array([f"v{i % 7}" for i in range(rows)])})


@pytest.fixture
def sink(tmp_path: Path) -> RawSink:
    return RawSink(str(tmp_path / "raw"))


def run_dir_of(sink: RawSink, key: PartitionKey, run_id: str) -> Path:
    return Path(sink.run_path(key, run_id))


def snapshot(root: Path) -> dict[str, tuple[int, str, int]]:
    """Every file under root: size, sha256, mtime_ns."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            out[str(path.relative_to(root))] = (
                st.st_size,
                hashlib.sha256(path.read_bytes()).hexdigest(),
                st.st_mtime_ns,
            )
    return out


def code_of(excinfo: pytest.ExceptionInfo) -> str:
    assert isinstance(excinfo.value, GridcatError)
    return excinfo.value.code


# ---------------------------------------------------------------- layout


def test_layout_paths_and_names():
    run_id = new_run_id()
    assert layout.partition_dir(KEY) == (
        "source=google_ads/customer_id=1234567890/query_name=campaign/logical_date=2026-11-01"
    )
    assert layout.run_dir(KEY, run_id) == f"{layout.partition_dir(KEY)}/run_id={run_id}"
    assert [layout.part_file_name(i) for i in (0, 1, 12345)] == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-12345.parquet",
    ]
    assert layout.metadata_tmp_name().startswith("metadata.json.tmp-")
    assert layout.metadata_tmp_name() != layout.metadata_tmp_name()
    assert layout.parse_run_dir_name(f"run_id={run_id}") == run_id
    for bad in (
        f"run_id={run_id.upper()}",
        "run_id=not-a-uuid",
        f"run={run_id}",
        "run_id=6f1c9a8e-2b4d-4c1e-9f3a-1b2c3d4e5f60",
    ):  # the last is a UUIDv4
        assert layout.parse_run_dir_name(bad) is None


def test_layout_refuses_keys_that_are_not_normalised(sink: RawSink):
    for key in (
        PartitionKey("google_ads", "123-456", "campaign", date(2026, 11, 1)),
        PartitionKey("google_ads", "123", "../../etc", date(2026, 11, 1)),
        PartitionKey("google_ads", "123", "campaign", datetime(2026, 11, 1, 5)),
    ):
        with pytest.raises(GridcatError) as exc:
            layout.partition_dir(key)
        assert code_of(exc) == INVALID_ARGUMENT
        with pytest.raises(GridcatError):
            sink.write_run(key, [numbered_table(1)], schema_version="1")
    with pytest.raises(ValueError):
        layout.check_part_file_name("../part-00000.parquet")


def test_run_directory_contents_on_disk(sink: RawSink, tmp_path: Path):
    meta = sink.write_run(KEY, sample_table().to_batches(), schema_version="1")
    run_dir = run_dir_of(sink, KEY, meta.run_id)
    assert run_dir == tmp_path / "raw" / layout.run_dir(KEY, meta.run_id)
    assert sorted(p.name for p in run_dir.iterdir()) == ["metadata.json", "part-00000.parquet"]
    assert sink.run_uri(KEY, meta.run_id) == "file://" + str(run_dir)


# ---------------------------------------------------------------- round trip and stats


def test_round_trip_table_metadata_and_checksums(sink: RawSink):
    table = sample_table()
    before = datetime.now(UTC)
    meta = sink.write_run(
        KEY,
        iter(table.to_batches(max_chunksize=2)),
        schema_version="3",
        gaql="SELECT campaign.id FROM campaign WHERE segments.date = '2026-11-01'",
        source_name="synthetic",
    )
    assert parse_run_id(meta.run_id) == meta.run_id
    assert (meta.source, meta.customer_id, meta.query_name, meta.logical_date) == KEY.as_tuple()
    assert meta.key == KEY
    assert meta.schema_version == "3"
    assert meta.record_count == 4
    assert meta.source_name == "synthetic"
    assert meta.gaql.startswith("SELECT campaign.id")
    assert meta.extracted_at.tzinfo is not None and meta.extracted_at.utcoffset() == timedelta(0)
    assert before <= meta.extracted_at <= datetime.now(UTC)
    assert json.loads(meta.arrow_schema) == [
        {"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in table.schema
    ]
    assert meta.column_stats == EXPECTED_STATS

    assert sink.read_metadata(KEY, meta.run_id) == meta
    assert sink.read_table(meta).equals(table)

    run_dir = run_dir_of(sink, KEY, meta.run_id)
    for entry in meta.files:
        data = (run_dir / entry.path).read_bytes()
        assert entry.bytes == len(data)
        assert entry.sha256 == hashlib.sha256(data).hexdigest()
    assert sum(f.rows for f in meta.files) == 4
    assert sink.verify_files(meta) == []


def test_metadata_json_round_trip_and_rejects_bad_content(sink: RawSink):
    meta = sink.write_run(KEY, [sample_table()], schema_version="1", source_name="synthetic")
    assert RunMetadata.from_json(meta.to_json()) == meta
    assert RunMetadata.from_json(meta.to_json_bytes()) == meta
    assert RunMetadata.from_json(json.dumps(meta.to_json())) == meta

    def broken(**changes):
        data = meta.to_json()
        data.update(changes)
        with pytest.raises(GridcatError) as exc:
            RunMetadata.from_json(data)
        assert code_of(exc) == INVALID_ARGUMENT
        return exc.value.message

    assert "metadata_version" in broken(metadata_version=99)
    broken(record_count=-1)
    broken(run_id="nope")
    broken(extracted_at="2026-11-01T00:00:00")  # no time zone
    broken(files=[{"path": "../../elsewhere.parquet", "bytes": 1, "rows": 1, "sha256": "0" * 64}])
    with pytest.raises(GridcatError):
        RunMetadata.from_json("{not json")


def test_column_stats_of_a_small_table():
    assert column_stats(sample_table()) == EXPECTED_STATS


def test_column_stats_are_json_safe_for_other_types():
    table = pa.table(
        {
            "ts": pa.array([datetime(2026, 11, 1, 12, tzinfo=UTC), None], pa.timestamp("us", tz="UTC")),
            "flag": pa.array([True, False]),
            "nan_only": pa.array([float("nan"), None]),
            "blob": pa.array([b"\x00\xff", b"\x01"]),
            "tags": pa.array([[1, 2], None]),  # a list has no order
            "dict": pa.array(["x", "y"]).dictionary_encode(),
        }
    )
    result = column_stats(table)
    json.dumps(result, allow_nan=False)
    assert result["ts"]["min"] == "2026-11-01T12:00:00+00:00"
    assert (result["flag"]["min"], result["flag"]["max"]) == (False, True)
    assert result["nan_only"]["min"] is None and result["nan_only"]["max"] is None
    assert (result["blob"]["min"], result["blob"]["max"]) == ("00ff", "01")
    assert result["tags"] == {
        "null_count": 1,
        "min": None,
        "max": None,
        "distinct_estimate": None,
        "distinct_exact": False,
    }
    assert (result["dict"]["min"], result["dict"]["distinct_estimate"]) == ("x", 2)
    empty = column_stats(sample_table().slice(0, 0))
    assert all(
        s == {"null_count": 0, "min": None, "max": None, "distinct_estimate": 0, "distinct_exact": True}
        for s in empty.values()
    )


def test_stats_merged_over_batches_equal_stats_of_the_whole_table():
    table = pa.table(
        {
            "n": pa.array([i if i % 5 else None for i in range(5000)], pa.int64()),
            "s": pa.array([f"name {i % 300}" if i % 7 else None for i in range(5000)]),
            "x": pa.array([(i * 37 % 1000) / 8 for i in range(5000)]),
        }
    )
    acc = StatsAccumulator(table.schema)
    for batch in table.to_batches(max_chunksize=333):
        acc.update(batch)
    merged = acc.result()
    assert merged == column_stats(table.combine_chunks())
    assert merged["n"] == {"null_count": 1000, "min": 1, "max": 4999, "distinct_estimate": 4000, "distinct_exact": True}
    assert merged["s"]["distinct_estimate"] == 300


def test_distinct_switches_to_hyperloglog_past_the_exact_limit(monkeypatch):
    monkeypatch.setattr(stats, "EXACT_DISTINCT_LIMIT", 1000)
    rows = 200_000
    table = pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "name": pa.array([f"kw {i}" for i in range(rows)]),
            "few": pa.array([f"c{i % 10}" for i in range(rows)]),
        }
    )
    acc = StatsAccumulator(table.schema)
    for batch in table.to_batches(max_chunksize=7_000):
        acc.update(batch)
    result = acc.result()
    for column in ("id", "name"):
        assert result[column]["distinct_exact"] is False
        assert abs(result[column]["distinct_estimate"] - rows) / rows < 0.03  # p=14: ~0.8 % std error
    assert result["few"] == {"null_count": 0, "min": "c0", "max": "c9", "distinct_estimate": 10, "distinct_exact": True}


def test_hyperloglog_hashes_values_not_positions():
    a = hash_array(pa.array(["abc", "x", None, "abc", ""]))
    b = hash_array(pa.array(["zz", "", "abc"]).slice(1))
    assert a[0] == a[2] == b[1] and a[3] == b[0] and len(set(a.tolist())) == 3
    sketch, other = HyperLogLog(), HyperLogLog()
    sketch.add(hash_array(pa.array(range(0, 60_000))))
    other.add(hash_array(pa.array(range(30_000, 90_000))))
    sketch.merge(other)
    assert abs(sketch.estimate() - 90_000) / 90_000 < 0.03
    assert hash_array(pa.array([[1]])) is None


# ---------------------------------------------------------------- rolling, empty, schema


def test_part_files_roll_after_max_rows(sink: RawSink):
    table = numbered_table(10)
    items = [table.slice(0, 4).to_batches()[0], table.slice(4, 4), table.slice(8, 2).to_batches()[0]]  # a Table too
    meta = sink.write_run(KEY, items, schema_version="1", max_rows_per_file=3)
    assert [(f.path, f.rows) for f in meta.files] == [
        ("part-00000.parquet", 3),
        ("part-00001.parquet", 3),
        ("part-00002.parquet", 3),
        ("part-00003.parquet", 1),
    ]
    assert meta.record_count == 10
    assert sink.read_table(meta).equals(table)
    assert sink.verify_files(meta) == []
    assert meta.column_stats["n"]["max"] == 9


def test_exact_multiple_of_max_rows_leaves_no_empty_trailing_file(sink: RawSink):
    meta = sink.write_run(KEY, numbered_table(6).to_batches(max_chunksize=2), schema_version="1", max_rows_per_file=3)
    assert [f.rows for f in meta.files] == [3, 3]


def test_empty_run_has_one_empty_file_with_the_given_schema(sink: RawSink):
    schema = sample_table().schema
    meta = sink.write_run(KEY, iter([]), schema_version="1", schema=schema)
    assert meta.record_count == 0
    assert [(f.path, f.rows) for f in meta.files] == [("part-00000.parquet", 0)]
    table = sink.read_table(meta)
    assert table.num_rows == 0 and table.schema.equals(schema)
    assert meta.column_stats["campaign_id"] == {
        "null_count": 0,
        "min": None,
        "max": None,
        "distinct_estimate": 0,
        "distinct_exact": True,
    }
    assert sink.verify_files(meta) == []
    assert [r.run_id for r in sink.list_runs(KEY)] == [meta.run_id]


def test_empty_run_without_schema_is_invalid(sink: RawSink):
    with pytest.raises(GridcatError) as exc:
        sink.write_run(KEY, [], schema_version="1")
    assert code_of(exc) == INVALID_ARGUMENT
    assert sink.list_runs(KEY, include_incomplete=True) == []  # refused before creating anything
    with pytest.raises(GridcatError) as exc:
        sink.write_run(KEY, iter([]), schema_version="1")
    assert code_of(exc) == INVALID_ARGUMENT
    assert sink.list_runs(KEY) == []


def test_zero_row_batches_give_the_batch_schema_not_the_fallback(sink: RawSink):
    table = numbered_table(0)
    empty_batch = pa.RecordBatch.from_pylist([], schema=table.schema)
    meta = sink.write_run(KEY, [empty_batch, empty_batch], schema_version="1", schema=pa.schema([("other", pa.int8())]))
    assert meta.record_count == 0 and len(meta.files) == 1
    assert sink.read_table(meta).schema.equals(table.schema)


def test_schema_mismatch_between_batches_is_an_error(sink: RawSink):
    first = pa.record_batch({"n": pa.array([1, 2], pa.int64())})
    second = pa.record_batch({"n": pa.array(["3"], pa.string())})
    with pytest.raises(GridcatError) as exc:
        sink.write_run(KEY, [first, second], schema_version="1")
    assert code_of(exc) == INVALID_ARGUMENT
    assert "schema" in exc.value.message
    [run] = sink.list_runs(KEY, include_incomplete=True)
    assert run.complete is False


def test_raw_means_raw_the_batch_schema_is_written(sink: RawSink):
    drifted = pa.table({"unexpected": pa.array([1.0, None])})
    meta = sink.write_run(KEY, [drifted], schema_version="1", schema=sample_table().schema)
    assert sink.read_table(meta).equals(drifted)
    assert [f["name"] for f in meta.schema_fields()] == ["unexpected"]


# ---------------------------------------------------------------- immutability


def test_writing_an_existing_run_id_fails_and_changes_nothing(sink: RawSink, tmp_path: Path):
    meta = sink.write_run(KEY, [sample_table()], schema_version="1")
    before = snapshot(tmp_path / "raw")
    for batches in ([numbered_table(3)], []):
        with pytest.raises(GridcatError) as exc:
            sink.write_run(KEY, batches, schema_version="2", run_id=meta.run_id, schema=sample_table().schema)
        assert code_of(exc) == ALREADY_EXISTS
    # an incomplete run directory is just as taken
    crashed = new_run_id()
    with pytest.raises(RuntimeError):
        sink.write_run(KEY, _crashing([numbered_table(2).to_batches()[0]]), schema_version="1", run_id=crashed)
    with pytest.raises(GridcatError) as exc:
        sink.write_run(KEY, [numbered_table(2)], schema_version="1", run_id=crashed)
    assert code_of(exc) == ALREADY_EXISTS
    after = snapshot(tmp_path / "raw")
    assert {k: v for k, v in after.items() if k in before} == before
    assert sink.read_metadata(KEY, meta.run_id) == meta


def test_reading_methods_change_nothing_and_no_api_modifies_a_run(sink: RawSink, tmp_path: Path):
    meta = sink.write_run(KEY, [sample_table()], schema_version="1")
    before = snapshot(tmp_path / "raw")
    sink.list_runs(KEY, include_incomplete=True)
    list(sink.iter_all_runs(include_incomplete=True))
    sink.read_metadata(KEY, meta.run_id)
    sink.read_table(meta)
    sink.verify_files(meta)
    sink.run_uri(KEY, meta.run_id)
    sink.run_path(KEY, meta.run_id)
    assert snapshot(tmp_path / "raw") == before
    public = {name for name in dir(RawSink) if not name.startswith("_")}
    assert public == {
        "delete_run",
        "filesystem",
        "iter_all_runs",
        "list_runs",
        "read_metadata",
        "read_table",
        "root",
        "run_path",
        "run_uri",
        "verify_files",
        "write_run",
    }
    with pytest.raises(AttributeError):
        meta.record_count = 5  # frozen


# ---------------------------------------------------------------- crash safety and atomic commit


class SourceCrash(Exception):
    pass


def _crashing(batches, exc: BaseException | None = None):
    yield from batches
    raise exc or RuntimeError("source died")


def test_crash_mid_write_leaves_an_incomplete_run(sink: RawSink):
    boom = SourceCrash("connection reset after one batch")
    with pytest.raises(SourceCrash) as exc:
        sink.write_run(KEY, _crashing(numbered_table(5).to_batches(), boom), schema_version="1")
    assert exc.value is boom  # propagated unchanged
    [run] = sink.list_runs(KEY, include_incomplete=True)
    assert run.complete is False and run.key == KEY
    assert sink.list_runs(KEY) == []
    assert list(sink.iter_all_runs()) == []
    assert [r.run_id for r in sink.iter_all_runs(include_incomplete=True)] == [run.run_id]
    run_dir = run_dir_of(sink, KEY, run.run_id)
    assert (run_dir / "part-00000.parquet").exists()  # the partial data stays, as evidence
    assert not (run_dir / "metadata.json").exists()
    with pytest.raises(GridcatError) as err:
        sink.read_metadata(KEY, run.run_id)
    assert code_of(err) == FAILED_PRECONDITION
    assert "incomplete" in err.value.message and "metadata.json" in err.value.message


def test_metadata_is_committed_by_rename_leaving_no_temporary_file(sink: RawSink, monkeypatch):
    renamed = []
    original = RawSink._rename

    def spy(self, src, dst):
        renamed.append((os.path.basename(src), os.path.basename(dst)))
        assert os.path.exists(src) and not os.path.exists(dst)
        original(self, src, dst)

    monkeypatch.setattr(RawSink, "_rename", spy)
    meta = sink.write_run(KEY, [sample_table()], schema_version="1")
    [(src, dst)] = renamed
    assert src.startswith("metadata.json.tmp-") and dst == "metadata.json"
    run_dir = run_dir_of(sink, KEY, meta.run_id)
    assert not list(run_dir.glob("metadata.json.tmp-*"))


def test_failed_metadata_rename_leaves_the_run_incomplete(sink: RawSink, monkeypatch):
    def failing(self, src, dst):
        raise OSError("disk went away during rename")

    monkeypatch.setattr(RawSink, "_rename", failing)
    with pytest.raises(OSError, match="disk went away"):
        sink.write_run(KEY, [sample_table()], schema_version="1")
    [run] = sink.list_runs(KEY, include_incomplete=True)
    assert run.complete is False
    run_dir = run_dir_of(sink, KEY, run.run_id)
    assert not (run_dir / "metadata.json").exists()
    assert not list(run_dir.glob("metadata.json.tmp-*"))
    with pytest.raises(GridcatError) as exc:
        sink.read_metadata(KEY, run.run_id)
    assert code_of(exc) == FAILED_PRECONDITION


# ---------------------------------------------------------------- verification and read errors


def test_verify_files_detects_tampering_in_a_copy(sink: RawSink, tmp_path: Path):
    meta = sink.write_run(
        KEY, numbered_table(1000).to_batches(max_chunksize=100), schema_version="1", max_rows_per_file=400
    )
    assert len(meta.files) == 3
    original_dir = run_dir_of(sink, KEY, meta.run_id)

    def copy_sink(name: str) -> tuple[RawSink, Path]:
        copy = RawSink(str(tmp_path / name))
        target = Path(copy.run_path(KEY, meta.run_id))
        shutil.copytree(original_dir, target)
        assert copy.verify_files(meta) == []
        return copy, target

    truncated, target = copy_sink("truncated")
    data = (target / "part-00001.parquet").read_bytes()
    (target / "part-00001.parquet").write_bytes(data[: len(data) // 2])
    [problem] = truncated.verify_files(meta)
    assert problem.startswith("part-00001.parquet:") and "bytes" in problem

    tampered, target = copy_sink("tampered")
    data = bytearray((target / "part-00002.parquet").read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content
    (target / "part-00002.parquet").write_bytes(bytes(data))
    [problem] = tampered.verify_files(meta)
    assert problem.startswith("part-00002.parquet:") and "sha256" in problem

    missing, target = copy_sink("missing")
    (target / "part-00000.parquet").unlink()
    assert missing.verify_files(meta) == ["part-00000.parquet: missing"]
    with pytest.raises(GridcatError) as exc:
        missing.read_table(missing.read_metadata(KEY, meta.run_id))
    assert code_of(exc) == FAILED_PRECONDITION

    lying = RunMetadata(**{**meta.__dict__, "record_count": 999})
    assert any("record_count" in p for p in sink.verify_files(lying))
    assert sink.verify_files(meta) == []  # the original is untouched


def test_read_table_reads_only_listed_files(sink: RawSink):
    meta = sink.write_run(KEY, [numbered_table(5)], schema_version="1")
    stray = run_dir_of(sink, KEY, meta.run_id) / "part-00001.parquet"
    shutil.copy(run_dir_of(sink, KEY, meta.run_id) / "part-00000.parquet", stray)
    assert sink.read_table(meta).num_rows == 5


def test_read_metadata_errors(sink: RawSink):
    with pytest.raises(GridcatError) as exc:
        sink.read_metadata(KEY, new_run_id())
    assert code_of(exc) == NOT_FOUND
    with pytest.raises(GridcatError) as exc:
        sink.read_metadata(KEY, "not-a-run-id")
    assert code_of(exc) == INVALID_ARGUMENT

    meta = sink.write_run(KEY, [numbered_table(2)], schema_version="1")
    metadata_file = run_dir_of(sink, KEY, meta.run_id) / "metadata.json"
    good = metadata_file.read_bytes()
    for corrupt in (b"{ truncated", b"[]", json.dumps({**json.loads(good), "files": "x"}).encode()):
        metadata_file.write_bytes(corrupt)
        with pytest.raises(GridcatError) as exc:
            sink.read_metadata(KEY, meta.run_id)
        assert code_of(exc) == FAILED_PRECONDITION
        assert "corrupt metadata.json" in exc.value.message

    # a metadata.json copied from another run is not this run's metadata
    other = sink.write_run(KEY, [numbered_table(2)], schema_version="1")
    metadata_file.write_bytes((run_dir_of(sink, KEY, other.run_id) / "metadata.json").read_bytes())
    with pytest.raises(GridcatError) as exc:
        sink.read_metadata(KEY, meta.run_id)
    assert code_of(exc) == FAILED_PRECONDITION


# ---------------------------------------------------------------- listing, ordering, retention


def test_list_runs_is_in_run_id_order_and_ignores_other_directories(sink: RawSink):
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    ids = [run_id_at(now_ms - 3000), run_id_at(now_ms - 2000), run_id_at(now_ms - 1000)]
    for run_id in (ids[2], ids[0], ids[1]):  # written out of order
        sink.write_run(KEY, [numbered_table(1)], schema_version="1", run_id=run_id)
    fresh = [sink.write_run(KEY, [numbered_table(1)], schema_version="1").run_id for _ in range(3)]
    partition = Path(sink.run_path(KEY, ids[0])).parent
    for junk in (
        "run_id=not-a-uuid",
        "run_id=6f1c9a8e-2b4d-4c1e-9f3a-1b2c3d4e5f60",
        f"run_id={fresh[0].upper()}",
        "_tmp",
    ):
        (partition / junk).mkdir()
    (partition / "README").write_text("not a run")
    runs = sink.list_runs(KEY)
    assert [r.run_id for r in runs] == ids + fresh == sorted(ids + fresh)
    assert [r.created_at for r in runs] == sorted(r.created_at for r in runs)
    assert all(r.complete and r.key == KEY for r in runs)
    assert sink.list_runs(OTHER_KEY) == []


def test_iter_all_runs_and_delete_run(sink: RawSink, tmp_path: Path):
    a = sink.write_run(KEY, [numbered_table(1)], schema_version="1")
    b = sink.write_run(OTHER_KEY, [numbered_table(1)], schema_version="1")
    with pytest.raises(RuntimeError):
        sink.write_run(OTHER_KEY, _crashing([]), schema_version="1")
    (tmp_path / "raw" / "source=google_ads" / "customer_id=not-digits" / "query_name=x").mkdir(parents=True)
    (tmp_path / "raw" / "lost+found").mkdir()
    complete = list(sink.iter_all_runs())
    assert {(r.key, r.run_id) for r in complete} == {(KEY, a.run_id), (OTHER_KEY, b.run_id)}
    assert len(list(sink.iter_all_runs(include_incomplete=True))) == 3

    sink.delete_run(KEY, a.run_id)
    assert not run_dir_of(sink, KEY, a.run_id).exists()
    assert sink.list_runs(KEY, include_incomplete=True) == []
    with pytest.raises(GridcatError) as exc:
        sink.delete_run(KEY, a.run_id)
    assert code_of(exc) == NOT_FOUND
    incomplete = [r for r in sink.iter_all_runs(include_incomplete=True) if not r.complete][0]
    sink.delete_run(OTHER_KEY, incomplete.run_id)  # retention can remove crashed runs too
    assert [r.run_id for r in sink.iter_all_runs(include_incomplete=True)] == [b.run_id]


# ---------------------------------------------------------------- roots and filesystems


def test_root_as_file_uri(tmp_path: Path):
    sink = RawSink((tmp_path / "raw dir").as_uri())
    meta = sink.write_run(KEY, [sample_table()], schema_version="1")
    assert sink.root == str(tmp_path / "raw dir")
    [run] = sink.list_runs(KEY)
    assert run.uri.startswith("file://") and "%20" in run.uri
    fs, path = pafs.FileSystem.from_uri(run.uri)
    assert path == sink.run_path(KEY, meta.run_id)
    assert fs.get_file_info(path + "/metadata.json").type == pafs.FileType.File
    assert RawSink(str(tmp_path / "raw dir")).read_table(meta).equals(sample_table())


def test_root_as_relative_path(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sink = RawSink("relative/raw")
    assert sink.root == str(tmp_path / "relative" / "raw")
    meta = sink.write_run(KEY, [sample_table()], schema_version="1")
    assert (tmp_path / "relative" / "raw" / layout.run_dir(KEY, meta.run_id) / "metadata.json").is_file()
    monkeypatch.chdir("/")
    assert sink.read_table(sink.read_metadata(KEY, meta.run_id)).equals(sample_table())


def _exercise(sink: RawSink) -> None:
    """The whole life cycle on any filesystem."""
    meta = sink.write_run(KEY, numbered_table(10).to_batches(max_chunksize=3), schema_version="1", max_rows_per_file=4)
    with pytest.raises(RuntimeError):
        sink.write_run(KEY, _crashing(numbered_table(2).to_batches()), schema_version="1")
    assert [r.run_id for r in sink.list_runs(KEY)] == [meta.run_id]
    assert [r.complete for r in sink.list_runs(KEY, include_incomplete=True)] == [True, False]
    assert sink.read_metadata(KEY, meta.run_id) == meta
    assert sink.read_table(meta).equals(numbered_table(10))
    assert sink.verify_files(meta) == []
    assert [r.run_id for r in sink.iter_all_runs()] == [meta.run_id]
    with pytest.raises(GridcatError) as exc:
        sink.write_run(KEY, [numbered_table(1)], schema_version="1", run_id=meta.run_id)
    assert code_of(exc) == ALREADY_EXISTS
    sink.delete_run(KEY, meta.run_id)
    assert sink.list_runs(KEY) == []


@pytest.mark.skipif(not hasattr(pafs, "_MockFileSystem"), reason="pyarrow has no _MockFileSystem")
@pytest.mark.parametrize("root", ["", "lake/raw"])
def test_non_local_mock_filesystem(root: str):
    mock = pafs._MockFileSystem()
    sink = RawSink(root, filesystem=mock)
    _exercise(sink)
    assert sink.run_uri(KEY, new_run_id()).startswith("mock://")


def test_subtree_filesystem_over_local(tmp_path: Path):
    (tmp_path / "base").mkdir()
    sink = RawSink("raw", filesystem=pafs.SubTreeFileSystem(str(tmp_path / "base"), pafs.LocalFileSystem()))
    _exercise(sink)
    meta = sink.write_run(KEY, [numbered_table(2)], schema_version="1")
    assert (tmp_path / "base" / "raw" / layout.run_dir(KEY, meta.run_id) / "metadata.json").is_file()
    assert sink.run_uri(KEY, meta.run_id) == "file://" + str(
        tmp_path / "base" / "raw" / layout.run_dir(KEY, meta.run_id)
    )


def test_object_store_without_atomic_rename_writes_metadata_directly(monkeypatch):
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    root = f"/gridcat-test-{new_run_id()}"  # fsspec's memory store is process-global
    store = pafs.PyFileSystem(pafs.FSSpecHandler(memory))

    def no_rename(self, src, dst):
        raise AssertionError("object stores must not commit by rename")

    monkeypatch.setattr(RawSink, "_rename", no_rename)
    try:
        sink = RawSink(root, filesystem=store)
        _exercise(sink)
        meta = sink.write_run(KEY, [sample_table()], schema_version="1")
        names = [i.base_name for i in store.get_file_info(pafs.FileSelector(sink.run_path(KEY, meta.run_id)))]
        assert sorted(names) == ["metadata.json", "part-00000.parquet"]
    finally:
        memory.rm(root, recursive=True)


def test_invalid_arguments(sink: RawSink):
    for kwargs in (
        {"schema_version": ""},
        {"schema_version": "1", "max_rows_per_file": 0},
        {"schema_version": "1", "run_id": "123"},
        {"schema_version": "1", "gaql": 5},
    ):
        with pytest.raises(GridcatError) as exc:
            sink.write_run(KEY, [numbered_table(1)], **kwargs)
        assert code_of(exc) == INVALID_ARGUMENT
    with pytest.raises(GridcatError) as exc:
        sink.write_run(KEY, [{"n": 1}], schema_version="1")
    assert code_of(exc) == INVALID_ARGUMENT
    with pytest.raises(GridcatError) as exc:
        RawSink("")
    assert code_of(exc) == INVALID_ARGUMENT
