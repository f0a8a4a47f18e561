"""The probe phase in parts, in this process: id partitions follow id order, a range of the previous probe
index is read whole (a container's members with it), and probing a listing in many parts finds what one part
finds, writes the index in parts and reuses it on the next pass."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from engine.config.settings import IngestConfig, WriterConfig
from engine.execute.probe_phase import ProbePlan, probe_in_parts
from engine.ingest.discover import discover_listing, discover_ranges
from engine.ingest.probe import PROBE_INDEX_SCHEMA, probe_settings
from engine.ingest.probe_parts import index_rows_of_range
from engine.partitions.keys import batches_by_rows, id_partitions, ids_by_partition, part_rows_for, split_rows
from engine.partitions.tasks import IN_PROCESS
from engine.store.location import location
from engine.store.writer import write_shard
from tests.support.image_files import jpeg_bytes


def sha(number: int) -> str:
    return hashlib.sha256(str(number).encode()).hexdigest()


def test_id_partitions_follow_the_order_of_ids_and_are_even() -> None:
    ids = sorted(sha(i) for i in range(4000))
    found = id_partitions(pa.array([*ids, None]), 4, missing=3)
    assert found[-1] == 3  # no id: where the caller says
    assert (np.diff(found[:-1]) >= 0).all()  # concatenated in partition order, ids stay sorted
    counts = np.bincount(found[:-1], minlength=4)
    assert counts.min() > 850 and counts.max() < 1150
    assert (id_partitions(pa.array(ids[:5]), 1) == 0).all()
    shuffled = ids[::7] + ids[1::7] + ids[2::7] + ids[3::7] + ids[4::7] + ids[5::7] + ids[6::7]
    chunked = pa.chunked_array([shuffled[:1000], shuffled[1000:1001], shuffled[1001:]])
    assert (id_partitions(chunked, 4) == id_partitions(pa.array(shuffled), 4)).all()  # read a chunk at a time
    pieces = [piece.to_pylist() for piece in ids_by_partition(chunked, 4)]
    assert [len(p) for p in pieces] == counts.tolist()
    assert all(sorted(piece) == ids[sum(counts[:k]) : sum(counts[: k + 1])] for k, piece in enumerate(pieces))


@pytest.mark.parametrize("total", [20_000, 1_000_000, 126_000_000, 5_000_000_000])
def test_parts_grow_with_the_corpus_so_the_pieces_they_exchange_stay_large(total: int) -> None:
    rows = part_rows_for(total, 262_144, 1024)
    parts = -(-total // rows)
    assert rows >= 262_144 and total / parts**2 >= 1024 * 0.99  # a piece per pair of parts: above the floor
    if total <= 262_144**2 // 1024:  # up to 256 parts (67M rows), the profile's part size holds
        assert rows == 262_144
    assert part_rows_for(126_000_000, 262_144, 1024) == 359_200  # FLD-5B's images: 351 parts, 1,023 rows a piece
    assert part_rows_for(20_000, 3, 0) == part_rows_for(0, 3, 1024) == 3  # no floor, or nothing to plan


def test_batches_by_rows_are_consecutive_and_hold_one_item_at_least() -> None:
    assert batches_by_rows([3, 3, 3, 10, 1, 1], 6) == [range(0, 2), range(2, 3), range(3, 4), range(4, 6)]
    assert batches_by_rows([], 6) == [] and batches_by_rows([0, 0], 6) == [range(0, 2)]


def test_split_rows_keeps_each_partitions_rows_in_table_order() -> None:
    table = pa.table({"n": [0, 1, 2, 3, 4, 5]})
    parts = split_rows(table, np.array([2, 0, 2, 1, 0, 2]), 3)
    assert [p.column("n").to_pylist() for p in parts] == [[1, 4], [3], [0, 2, 5]]


def index_row(uri: str, container: str | None = None) -> dict:
    locator = {"container": container, "kind": "tar", "member": uri} if container else None
    return {"source_uri": uri, "image_id": sha(len(uri)), "locator": locator}


def test_a_range_of_the_index_holds_its_files_and_every_member_of_its_containers(tmp_path: Path) -> None:
    rows = [index_row("/d/a.jpg"), index_row("/d/b.jpg"), index_row("/d/c.jpg"), index_row("/d/e.jpg")]
    rows += [index_row(f"/d/c.tar#{m}", "/d/c.tar") for m in ("x", "y")]
    rows += [index_row("/d/c.tar!z.jpg")]  # sorts after /d/c.tar but before its members
    table = pa.Table.from_pylist(rows, schema=PROBE_INDEX_SCHEMA).sort_by("source_uri")
    part = write_shard(table, location(tmp_path), "probes/part-x-00000.parquet", WriterConfig(row_group_rows=2), {})
    found = index_rows_of_range(tmp_path, [part], "/d/b.jpg", "/d/c.tar!z.jpg").column("source_uri").to_pylist()
    assert sorted(found) == ["/d/b.jpg", "/d/c.jpg", "/d/c.tar#x", "/d/c.tar#y"]
    assert index_rows_of_range(tmp_path, [part], "/d/e.jpg", None).column("source_uri").to_pylist() == ["/d/e.jpg"]


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(9):
        (folder / f"{i}.jpg").write_bytes(jpeg_bytes(seed=i % 7))  # 7 and 8 copy 0 and 1
    (folder / "broken.jpg").write_bytes(b"not an image")
    old = time.time() - 3600  # older than the cache's racy window
    for path in folder.iterdir():
        os.utime(path, (old, old))
    return folder


def probe_plan(folder: Path, out: Path, rows: int, previous=None) -> ProbePlan:
    ingest = IngestConfig()
    listing = discover_listing([str(folder)], ingest.extensions)
    return ProbePlan(listing, previous, out, "run1", probe_settings(ingest), WriterConfig(), rows_per_part=rows)


def never_ray() -> None:
    raise AssertionError("Ray was started")


def test_probing_in_many_parts_finds_what_one_part_finds_and_reuses_its_parts(images: Path, tmp_path: Path) -> None:
    whole = probe_in_parts(probe_plan(images, tmp_path / "one", 1000), never_ray)
    parts = probe_in_parts(probe_plan(images, tmp_path / "many", 3), never_ray, IN_PROCESS)
    work, whole_work = (found.work.gather().drop_columns(["checked_ns"]) for found in (parts, whole))
    assert len(parts.work.handles) == 4 and work.equals(whole_work)  # 10 paths, 3 a part
    assert parts.work.rows == 7 and parts.quarantined.gather().column("reason").to_pylist() == ["not_an_image"]
    seen_in_parts, seen_whole = parts.seen_parts.gather(), whole.seen_parts.gather()
    assert sorted(seen_in_parts.column("source_uri").to_pylist()) == sorted(seen_whole.column("source_uri").to_pylist())
    assert sum(p.rows for p in parts.index) == 10  # probed in this process: one table, one part
    again = probe_in_parts(probe_plan(images, tmp_path / "many", 3, parts.index), never_ray, IN_PROCESS)
    assert (again.cached, again.hashed, again.unchanged) == (10, 0, True)
    assert again.index == parts.index  # an unchanged index is not written again
    assert again.work.gather().column("image_id").to_pylist() == whole.work.gather().column("image_id").to_pylist()
    (images / "3.jpg").write_bytes(jpeg_bytes(seed=30))
    changed = probe_in_parts(probe_plan(images, tmp_path / "many", 3, parts.index), never_ray, IN_PROCESS)
    assert (changed.cached, changed.hashed, changed.unchanged) == (9, 1, False)
    assert sha(0) not in changed.work.gather().column("image_id").to_pylist()
    assert changed.work.rows == 7 and sum(p.rows for p in changed.index) == 10
    assert len(changed.index) == 5  # each range's hits (4 ranges of 3 files), and the file probed again


def test_probing_a_listing_sorted_on_disk_finds_what_probing_one_table_finds(images: Path, tmp_path: Path) -> None:
    ingest = IngestConfig()
    whole = probe_in_parts(probe_plan(images, tmp_path / "one", 1000), never_ray)
    ranged = discover_ranges([str(images)], ingest.extensions, None, chunk_rows=3)
    settings = probe_settings(ingest)
    plan = ProbePlan(ranged, None, tmp_path / "many", "run1", settings, WriterConfig(), rows_per_part=3)
    parts = probe_in_parts(plan, never_ray, IN_PROCESS)
    assert ranged.spill is not None and len(ranged.ranges) == 4 and parts.work.rows == whole.work.rows == 7
    assert parts.work.gather().drop_columns("checked_ns").equals(whole.work.gather().drop_columns("checked_ns"))
    assert parts.quarantined.gather().column("reason").to_pylist() == ["not_an_image"]
    again = probe_in_parts(replace(plan, previous=parts.index), never_ray, IN_PROCESS)  # split by each range's bounds
    assert (again.cached, again.hashed, again.unchanged) == (10, 0, True)
    limited = probe_in_parts(replace(plan, root=tmp_path / "limited", limit=4), never_ray, IN_PROCESS)
    uris = ranged.table().column("uri").to_pylist()  # --limit takes the first files by URI, across ranges
    assert limited.hashed == 4 and limited.deferred.to_pylist() == uris[4:]
