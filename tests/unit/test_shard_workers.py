"""Writing annotation shards where the rows are: closed by rows or by time, journaled with their writer."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from engine.config.settings import WriterConfig
from engine.execute.shard_workers import ShardWorker, split_ingest_failures, worker_count
from engine.ingest.image_bytes import INGEST_STAGE
from schemas.arrow import ANNOTATION_SCHEMA
from schemas.records import ImageRecord, StageError


def rows(count: int, start: int = 0, failing: frozenset[int] = frozenset()) -> pa.Table:
    records = []
    for i in range(start, start + count):
        record = ImageRecord(f"{i:064x}", f"/data/img_{i}.png", 32, 24, "PNG", [f"/data/img_{i}.png"])
        if i in failing:
            record.errors.append(StageError(INGEST_STAGE, "missing: the file is gone"))
        records.append(record.to_row())
    return pa.Table.from_pylist(records, schema=ANNOTATION_SCHEMA)


def journal_entries(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.glob("_runs/run1/shards/*.json"))]


def test_a_shard_is_closed_by_time_before_it_fills_and_journaled_with_its_writer(tmp_path) -> None:
    worker = ShardWorker(
        str(tmp_path), "part-run1-w0", "run1", WriterConfig(rows_per_shard=1000, max_shard_seconds=0.2)
    )
    report = worker.write(rows(3))
    assert report.rows == 3 and report.shards == []  # 3 rows of 1000: the shard is still open
    deadline = time.monotonic() + 10
    while not journal_entries(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)  # the worker's timer closes the shard without another write
    [entry] = journal_entries(tmp_path)
    assert entry["shard"]["path"] == "annotations/part-run1-w0-00000.parquet" and entry["shard"]["rows"] == 3
    assert entry["writer"]["pid"] == os.getpid() and entry["writer"]["node"] is None
    assert pq.read_table(tmp_path / entry["shard"]["path"]).num_rows == 3
    later = worker.write(rows(2, start=3))
    assert [s.path for s in later.shards] == ["annotations/part-run1-w0-00000.parquet"]  # reported once, here
    closed = worker.close()
    assert [(s.path, s.rows) for s in closed.shards] == [("annotations/part-run1-w0-00001.parquet", 2)]


def test_a_shard_is_closed_by_rows_and_the_rest_waits_for_close(tmp_path) -> None:
    worker = ShardWorker(str(tmp_path), "part-run1-w0", "run1", WriterConfig(rows_per_shard=4, max_shard_seconds=600))
    report = worker.write(rows(6))
    assert [(s.path, s.rows) for s in report.shards] == [("annotations/part-run1-w0-00000.parquet", 4)]
    assert [(s.rows, s.counts["images"]) for s in worker.close().shards] == [(2, 2)]
    assert [e["image_ids"] for e in journal_entries(tmp_path)] == [
        [f"{i:064x}" for i in range(4)],
        [f"{i:064x}" for i in range(4, 6)],
    ]


def test_rows_that_failed_to_load_are_reported_for_quarantine_not_written(tmp_path) -> None:
    kept, late = split_ingest_failures(rows(4, failing=frozenset({1, 3})))
    assert kept.column("image_id").to_pylist() == [f"{0:064x}", f"{2:064x}"]
    assert late == [
        {
            "source_uri": "/data/img_1.png",
            "image_id": f"{1:064x}",
            "reason": "missing",
            "detail": "the file is gone",
            "size_bytes": None,
        },
        {
            "source_uri": "/data/img_3.png",
            "image_id": f"{3:064x}",
            "reason": "missing",
            "detail": "the file is gone",
            "size_bytes": None,
        },
    ]
    worker = ShardWorker(str(tmp_path), "part-run1", "run1", WriterConfig(rows_per_shard=10))
    report = worker.write(rows(4, failing=frozenset({1, 3})))
    assert report.rows == 2 and [r["image_id"] for r in report.late_quarantine] == [f"{1:064x}", f"{3:064x}"]
    assert [s.rows for s in worker.close().shards] == [2]


def test_one_writer_per_eight_cpus_unless_configured() -> None:
    assert [worker_count(WriterConfig(), cpus) for cpus in (1, 2, 8, 17, 64)] == [1, 1, 1, 2, 8]
    assert worker_count(WriterConfig(workers=3), 2) == 3
