"""The previous version's images in id partitions: the paths of them a run saw found by an exchange keyed by path
(a path whose content changed holds an id of another partition), and the images kept or tombstoned decided in each
partition exactly as over the whole tables."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pytest

from engine.config.settings import WriterConfig
from engine.execute.sink import LATE
from engine.ingest.curation import carried_skips
from engine.ingest.probe_parts import SEEN_PATHS
from engine.partitions.keys import id_partitions, split_rows
from engine.partitions.parts import IDS, Parts
from engine.partitions.tasks import IN_PROCESS
from engine.refresh.previous_parts import (
    carried_skips_in_parts,
    kept_unlisted_ids,
    path_keys,
    previous_images_in_parts,
    tombstones_in_parts,
)
from engine.refresh.scope import input_scope, kept_out_of_scope
from engine.refresh.tombstones import PATH_IDS, find_tombstones
from engine.store.location import location
from engine.store.reader import read_shards_where
from engine.store.side_tables import write_skipped
from engine.store.writer import write_shard
from schemas.arrow import ANNOTATION_SCHEMA, SKIPPED_SCHEMA
from schemas.records import ImageRecord


def sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


# The previous version: images by name with their paths (two shards).
PREVIOUS = {
    "same": ["/in/same.png", "/in/same-copy.png"],
    "changed": ["/in/changed.png"],  # now holds "fresh"
    "bad": ["/in/bad.png"],  # now quarantined
    "gone": ["/in/gone.png"],  # not probed, under the input: gone
    "elsewhere": ["/other/e.png"],  # not probed, outside the input: kept as it was
    "moved": ["/in/moved-from.png"],  # its content is now at another path
    "skipped": ["/in/skipped.png"],
}
# What this run probed: each path and the id it holds now (null: quarantined).
SEEN = {
    "/in/same.png": "same",
    "/in/same-copy.png": "same",
    "/in/changed.png": "fresh",
    "/in/bad.png": None,
    "/in/moved-to.png": "moved",
    "/in/skipped.png": "skipped",
    "/in/new.png": "new",
}


@pytest.fixture
def shards(tmp_path: Path) -> list:
    records = [ImageRecord(sha(name), paths[0], 4, 4, "png", paths) for name, paths in PREVIOUS.items()]
    table = pa.Table.from_pylist([r.to_row() for r in records], schema=ANNOTATION_SCHEMA)
    root = location(str(tmp_path))
    return [
        write_shard(table.slice(0, 4), root, "annotations/a.parquet", WriterConfig(), {}),
        write_shard(table.slice(4), root, "annotations/b.parquet", WriterConfig(), {}),
    ]


def seen_parts(count: int) -> Parts:
    """The paths seen in ``count`` id partitions by the id they hold now (quarantined ones in partition 0)."""
    rows = [{"source_uri": uri, "image_id": None if name is None else sha(name)} for uri, name in SEEN.items()]
    table = pa.Table.from_pylist(rows, schema=SEEN_PATHS)
    pieces = split_rows(table, id_partitions(table.column("image_id"), count), count)
    return Parts(pieces, IN_PROCESS, [p.num_rows for p in pieces], SEEN_PATHS)


def kept_parts(ids: pa.Array, count: int) -> Parts:
    table = pa.Table.from_arrays([ids], schema=IDS)
    pieces = split_rows(table, id_partitions(ids, count), count)
    return Parts(pieces, IN_PROCESS, [p.num_rows for p in pieces], IDS)


def names(ids: list[str]) -> list[str]:
    by_id = {sha(name): name for name in [*PREVIOUS, *SKIPPED, *filter(None, SEEN.values())]}
    return sorted(by_id[i] for i in ids)


@pytest.mark.parametrize("count", [1, 4])
def test_the_paths_seen_of_each_image_come_to_its_partition(tmp_path: Path, shards: list, count: int) -> None:
    previous = previous_images_in_parts(location(str(tmp_path)), shards, seen_parts(count), batch_rows=3)
    assert previous.rows == len(PREVIOUS) and len(previous.images.handles) == count
    for k, (images, seen) in enumerate(zip(previous.images.each(), previous.seen.each(), strict=True)):
        assert set(id_partitions(images.column("image_id"), count).tolist()) <= {k}  # the work table's partitions
        mine = {p for places in images.column("source_uris").to_pylist() for p in places}
        assert set(seen.column("source_uri").to_pylist()) == mine & set(SEEN)  # every seen path of its images
    found = previous.seen.gather()
    now = dict(zip(found.column("source_uri").to_pylist(), found.column("image_id").to_pylist(), strict=True))
    assert now["/in/changed.png"] == sha("fresh") and now["/in/bad.png"] is None
    assert "/in/gone.png" not in now and "/in/new.png" not in now  # not probed; not a previous image's path


@pytest.mark.parametrize("count", [1, 4])
def test_kept_and_tombstoned_images_are_those_of_the_whole_tables(tmp_path: Path, shards: list, count: int) -> None:
    previous = previous_images_in_parts(location(str(tmp_path)), shards, seen_parts(count), batch_rows=3)
    scope = input_scope(["/in"])
    kept = kept_unlisted_ids(previous, seen_parts(count), scope)
    assert len(kept.handles) == count and kept.rows == 1  # left in the partitions
    kept_ids = kept.gather().column("image_id")
    whole_images, whole_seen = previous.images.gather(), seen_parts(1).gather()
    expected = kept_out_of_scope(
        whole_images, whole_seen.column("source_uri"), whole_seen.column("image_id").drop_null(), scope
    )
    assert names(kept_ids.to_pylist()) == names(expected.to_pylist()) == ["elsewhere"]
    sent = [sha("same"), sha("moved")]  # "moved" was annotated again, under its new path
    late = ["/in/same.png"]  # "same" failed to load while annotated: not written, it counts as quarantined
    late_rows = pa.table({"source_uri": late, "image_id": [sha("same")]}, LATE)
    carried = kept  # carry-over's ids in their partitions: here, the images kept unlisted
    sent_parts = kept_parts(pa.array(sent), count)
    skipped = kept_parts(pa.array([sha("skipped")]), count)  # curation's skipped rows (their ids) in partitions
    tombstones = tombstones_in_parts(previous, carried, sent_parts, late_rows, skipped)
    whole_paths = pa.concat_tables(
        [
            whole_seen.cast(PATH_IDS).filter(
                pa.array([uri not in late for uri in whole_seen["source_uri"].to_pylist()])
            ),
            pa.table({"source_uri": late, "image_id": pa.nulls(1, pa.string())}, PATH_IDS),
        ]
    )
    written = [sha("moved"), *kept_ids.to_pylist()]
    expected_tombstones = find_tombstones(whole_images, written, whole_paths, [sha("skipped")])
    assert len(tombstones.handles) == count and tombstones.rows == expected_tombstones.num_rows
    assert tombstones.gather().to_pylist() == expected_tombstones.to_pylist()  # partitions in id order
    by_name = {names([row["image_id"]])[0]: row for row in tombstones.gather().to_pylist()}
    assert set(by_name) == {"changed", "bad", "gone", "skipped", "same"}
    assert by_name["same"]["reason"] == "quarantined"
    assert by_name["changed"]["reason"] == "content_changed" and by_name["changed"]["replaced_by"] == sha("fresh")
    assert (by_name["bad"]["reason"], by_name["gone"]["reason"], by_name["skipped"]["reason"]) == (
        "quarantined",
        "source_removed",
        "skipped",
    )


def test_a_first_run_has_no_previous_images() -> None:
    previous = previous_images_in_parts("/nowhere", [], seen_parts(3), batch_rows=3)
    assert previous.rows == 0 and len(previous.images.handles) == len(previous.seen.handles) == 3


# The previous version's skipped rows: image name -> its paths (None: the row names its own path only).
SKIPPED = {
    "skipped": ["/in/skipped.png"],  # probed again: judged by this run, not carried
    "kept-skip": ["/other/k.png"],  # not probed, outside the input: carried
    "gone-skip": ["/in/gone-skip.png"],  # not probed, under the input: gone
    "new": ["/other/new-copy.png"],  # its image was probed at another path: judged by this run
    "was-changed": ["/in/changed.png"],  # its path now holds "fresh", an id of another partition
    "own-path": None,  # /other/own.png, kept: a row without source_uris
}


def skipped_shards(root: str) -> list:
    """The previous version's skipped table in two shards."""
    rows = [
        {
            "source_uri": (paths or ["/other/own.png"])[0],
            "image_id": sha(name),
            "source_uris": paths,
            "rule": "min_side",
        }
        for name, paths in SKIPPED.items()
    ]
    table = pa.Table.from_pylist(rows, schema=SKIPPED_SCHEMA)
    return [*write_skipped(root, "a", WriterConfig(), table[:3]), *write_skipped(root, "b", WriterConfig(), table[3:])]


@pytest.mark.parametrize("count", [1, 4])
def test_skipped_rows_carried_are_those_of_the_whole_tables(tmp_path: Path, count: int) -> None:
    root, scope = location(str(tmp_path)), input_scope(["/in"])
    shards = skipped_shards(str(tmp_path))
    carried = carried_skips_in_parts(root, shards, seen_parts(count), scope, batch_rows=2)
    assert len(carried.handles) == count and carried.rows == 2
    for k, part in enumerate(carried.each()):
        assert set(id_partitions(part.column("image_id"), count).tolist()) <= {k}
    previous = read_shards_where(root, shards, SKIPPED_SCHEMA)
    seen = seen_parts(1).gather()
    expected = carried_skips(previous, seen.column("source_uri"), seen.column("image_id").drop_null(), scope)
    found = carried.gather().sort_by("image_id")
    assert found.equals(expected.sort_by("image_id"))  # rows as they were (source_uris left null where it was)
    assert names(found.column("image_id").to_pylist()) == ["kept-skip", "own-path"]


def test_a_path_has_one_path_partition_in_range() -> None:
    paths = pa.array([f"/in/{k}.png" for k in range(1000)])
    keys = path_keys(paths, 7)
    assert keys.min() >= 0 and keys.max() == 6 and (keys == path_keys(paths, 7)).all()
    assert min((keys == k).sum() for k in range(7)) > 100  # spread over every partition
    assert path_keys(paths, 1).tolist() == [0] * 1000
