"""Plain files go to probe tasks in groups sized to the cluster: few tasks for a few files, never huge ones."""

from __future__ import annotations

import pyarrow as pa

from engine.ingest.listing import as_listing
from engine.ingest.probe import (
    IN_PROCESS_PROBE_BYTES,
    MAX_FILES_PER_TASK,
    MIN_FILES_PER_TASK,
    files_per_task,
    fits_in_process,
    probe_blocks,
)
from engine.ingest.sources import SOURCE_SCHEMA, Source, SourceKind


def test_a_few_files_go_a_handful_per_task() -> None:
    assert files_per_task(10, cpus=3) == MIN_FILES_PER_TASK == 16
    assert files_per_task(0, cpus=3) == MIN_FILES_PER_TASK


def test_many_files_make_about_four_tasks_per_cpu() -> None:
    assert files_per_task(1_200, cpus=3) == 100  # 12 tasks of 100 files
    assert files_per_task(1_201, cpus=3) == 101  # the remainder does not make a 13th task of one file


def test_tasks_never_take_more_than_the_maximum() -> None:
    assert files_per_task(20_000, cpus=3) == MAX_FILES_PER_TASK == 256
    assert files_per_task(20_000, cpus=1_000) == MIN_FILES_PER_TASK  # a big cluster: small tasks, all busy


def test_a_cluster_reporting_no_cpus_counts_as_one() -> None:
    assert files_per_task(100, cpus=0) == 100


def test_a_listing_becomes_one_block_per_container_then_the_files_in_groups() -> None:
    sources = [Source(SourceKind.FILE, f"/d/{i:03d}.jpg") for i in range(40)]
    sources += [Source(SourceKind.TAR, "/d/a.tar"), Source(SourceKind.TABLE, "/d/b.parquet")]
    listing = as_listing(sorted(sources, key=lambda s: s.uri))
    blocks = probe_blocks(listing, cpus=1)  # 40 files: 10 a task would be 4 per CPU, but at least 16
    assert [b.column("uri").to_pylist() for b in blocks[:2]] == [["/d/a.tar"], ["/d/b.parquet"]]
    assert [b.num_rows for b in blocks[2:]] == [16, 16, 8] and all(b.schema == SOURCE_SCHEMA for b in blocks)
    assert [u for b in blocks[2:] for u in b.column("uri").to_pylist()] == [f"/d/{i:03d}.jpg" for i in range(40)]
    assert probe_blocks(listing.slice(0, 0), cpus=4) == []


def test_sources_are_probed_in_process_only_while_their_bytes_fit(tmp_path) -> None:
    small = [Source(SourceKind.FILE, f"/d/{i}.jpg", size=IN_PROCESS_PROBE_BYTES // 4) for i in range(4)]
    assert fits_in_process(as_listing(small))
    assert not fits_in_process(as_listing([*small, Source(SourceKind.FILE, "/d/x.jpg", size=1)]))
    (tmp_path / "a.jpg").write_bytes(b"x" * 100)
    unlisted = as_listing([Source(SourceKind.FILE, str(tmp_path / "a.jpg"))])
    assert fits_in_process(unlisted, budget=100) and not fits_in_process(unlisted, budget=99)  # stated: 100 bytes
    remote = [Source(SourceKind.FILE, "https://example.invalid/a.jpg")]
    assert fits_in_process(as_listing(remote))  # one far object of unknown size counts as the whole budget
    assert not fits_in_process(as_listing([*remote, Source(SourceKind.FILE, "/d/y.jpg", size=1)]))
    assert fits_in_process(pa.Table.from_pylist([], SOURCE_SCHEMA))
