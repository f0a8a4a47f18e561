"""The run's listing in URI ranges: a listing longer than a chunk is sorted on local disk (each URI once, the first
listed kept, ranges in URI order and about a chunk each); a listing of one chunk stays in memory."""

from __future__ import annotations

import gc
import os
import random
from pathlib import Path

import pyarrow as pa

from engine.ingest.discover import discover_listing, discover_ranges
from engine.ingest.listing import sorted_listing
from engine.ingest.listing_ranges import RangedListing, range_bounds, ranged_listing
from engine.ingest.sources import SOURCE_SCHEMA


def listed(uris: list[str], size: int) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([{"kind": "file", "uri": u, "size": size} for u in uris], SOURCE_SCHEMA)


def shuffled_batches(count: int, per_batch: int, seed: int = 3) -> list[pa.RecordBatch]:
    """``count`` URIs in random order, each batch's rows sized by the batch's number; every 10th URI listed again
    in a later batch (that row must lose: the first listed is kept)."""
    uris = [f"s3://b/{i:06d}.jpg" for i in range(count)]
    random.Random(seed).shuffle(uris)
    batches = [listed(uris[i : i + per_batch], i // per_batch) for i in range(0, count, per_batch)]
    return [*batches, listed(uris[: count // per_batch * per_batch : 10], 999)]


def test_a_listing_longer_than_a_chunk_is_sorted_on_disk_into_even_ranges_in_uri_order() -> None:
    batches = shuffled_batches(5000, 300)
    ranged = ranged_listing(batches, chunk_rows=1000)
    # 5,480 rows listed: 5 sorted chunks of at least 1,000 rows (the last what is left, their files deleted once
    # merged), 6 ranges (5,480 / 1,000)
    assert ranged.spill is not None
    assert sorted(os.listdir(ranged.spill.name)) == [f"range-{k:06d}.arrow" for k in range(6)]
    assert ranged.table().equals(sorted_listing(batches))  # each URI once, its first listed row (never size 999)
    assert ranged.rows == 5000 and 999 not in ranged.table().column("size").to_pylist()
    assert len(ranged.ranges) == 6 and all(750 < table.num_rows < 950 for table in ranged.ranges)
    lows = ranged.lows
    assert lows == sorted(lows) and len(set(lows)) == 6
    for table, high in zip(ranged.ranges, [*lows[1:], None], strict=True):
        assert high is None or table.column("uri")[-1].as_py() < high


def test_the_spilled_files_go_with_the_listing() -> None:
    ranged = ranged_listing(shuffled_batches(3000, 500), chunk_rows=1000)
    folder = Path(ranged.spill.name)
    first = ranged.ranges[0].column("uri")[0].as_py()
    assert folder.is_dir()
    ranges = ranged.ranges
    del ranged
    gc.collect()
    assert not folder.exists() and ranges[0].column("uri")[0].as_py() == first  # mapped pages outlive the files


def test_a_listing_of_one_chunk_stays_here_cut_into_ranges() -> None:
    batches = shuffled_batches(900, 100)
    ranged = ranged_listing(batches, chunk_rows=1000)
    assert ranged.spill is None and len(ranged.ranges) == 1 and ranged.table().equals(sorted_listing(batches))
    cut = RangedListing.of(sorted_listing(batches), 400)
    assert [t.num_rows for t in cut.ranges] == [400, 400, 100] and cut.table().equals(ranged.table())
    empty = ranged_listing([], chunk_rows=10)
    assert empty.rows == 0 and empty.lows == [None]


def test_range_bounds_split_the_sampled_uris_evenly_and_once_each() -> None:
    run = pa.table({"uri": [f"{i:04d}" for i in range(1000)]})
    assert range_bounds([run], 4) == ["0249", "0501", "0750"]  # of every 3rd URI (1,000 // 256)
    assert range_bounds([run, run], 1) == [] and range_bounds([], 3) == []
    same = pa.table({"uri": ["a"] * 500 + ["b"] * 500})
    assert range_bounds([same], 8) == ["a", "b"]  # a URI's rows never straddle a bound


def test_discovery_in_ranges_lists_what_one_table_lists(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(7):
        (folder / f"{i}.jpg").write_bytes(b"x")
    (tmp_path / "list.txt").write_text("in/3.jpg\nin/9.jpg\n")
    inputs = [str(tmp_path / "list.txt"), str(folder)]
    whole = discover_listing(inputs, (".jpg",))
    ranged = discover_ranges(inputs, (".jpg",), None, chunk_rows=3)
    assert ranged.spill is not None and ranged.table().equals(whole) and ranged.rows == 8
