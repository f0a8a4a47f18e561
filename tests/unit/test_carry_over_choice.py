"""Carry-over's choice of rows, in columns: each wanted image's least-work row, earliest candidate first."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from engine.config.settings import WriterConfig
from engine.ingest.image_bytes import LOCATED_ROWS, LOCATOR_COLUMN
from engine.ingest.locator import Locator
from engine.ingest.probe import WORK_SCHEMA, as_work_table
from engine.partitions.keys import id_partitions, split_by_id, split_rows
from engine.partitions.parts import IDS, Parts
from engine.partitions.tasks import IN_PROCESS
from engine.refresh.carry_parts import row_keys
from engine.refresh.carryover import Candidate, plan_carry_over
from engine.refresh.incremental import StagePlan, StageSpec
from engine.store.location import location
from engine.store.writer import write_shard
from schemas.arrow import ANNOTATION_SCHEMA
from schemas.records import ImageRecord, StageError

OCR = StageSpec("ocr", "specialists", "o1", produces=frozenset({"regions"}))
THRESHOLD = StageSpec("threshold", "filters", "t1")
PLAN = StagePlan([OCR, THRESHOLD])
CURRENT = {"ocr": "o1", "threshold": "t1"}


def _shard(root: Path, name: str, rows: list[ImageRecord]) -> Candidate:
    table = pa.Table.from_pylist([r.to_row() for r in rows], schema=ANNOTATION_SCHEMA)
    return Candidate(write_shard(table, location(str(root)), f"annotations/{name}.parquet", WriterConfig(), {}))


def _record(image_id: str, stages: dict[str, str], paths: list[str] | None = None) -> ImageRecord:
    paths = paths or [f"/in/{image_id}.png"]
    return ImageRecord(image_id, paths[0], 4, 4, "png", paths, stages=dict(stages))


def _work(ids_paths: dict[str, list[str]], locators: dict[str, Locator] | None = None) -> pa.Table:
    located = locators or {}
    rows = [
        {"image_id": i, "source_uri": p[0], "source_uris": p, "locator": located[i].to_dict() if i in located else None}
        for i, p in ids_paths.items()
    ]
    return as_work_table(
        pa.Table.from_pylist(
            rows, schema=pa.schema([WORK_SCHEMA.field(n) for n in ("image_id", "source_uri", "source_uris", "locator")])
        )
    )


def test_rows_with_the_same_stages_and_errors_share_a_key() -> None:
    rows = [
        _record("a", CURRENT),
        _record("b", CURRENT),
        _record("c", {"ocr": "o0", "threshold": "t1"}),
        _record("d", {}),
    ]
    rows[1].errors = [StageError("ocr", "boom")]
    table = pa.Table.from_pylist([r.to_row() for r in rows], schema=ANNOTATION_SCHEMA)
    keys = row_keys(table.slice(0).select(["stages", "errors"])).to_pylist()
    assert len(set(keys)) == 4
    assert row_keys(table.slice(2, 1)).to_pylist() == [keys[2]]  # a slice keys as the whole does


def test_each_image_takes_its_least_work_row_and_new_images_stay_new(tmp_path: Path) -> None:
    stale, exact = {"ocr": "o0", "threshold": "t1"}, CURRENT
    first = _shard(tmp_path, "first", [_record("a", stale), _record("b", exact), _record("gone", exact)])
    second = _shard(tmp_path, "second", [_record("a", exact), _record("b", exact), _record("b", stale)])
    work = _work({"a": ["/in/a.png"], "b": ["/in/b.png", "/in/b-copy.png"], "new": ["/in/new.png"]})
    carry = plan_carry_over(location(str(tmp_path)), [first, second], work, PLAN, WriterConfig(), "run")
    assert sorted(carry.carried_ids().to_pylist()) == ["a", "b"] and carry.carried_count == 2
    assert carry.new.gather().column("image_id").to_pylist() == ["new"]
    assert carry.rerun_pixels.rows == carry.rerun_filters.rows == 0
    # Neither shard is referenced as it is: each holds a row not carried, and b has a new path.
    assert {s.path for s in carry.shards}.isdisjoint({first.shard.path, second.shard.path})
    rewritten = pa.concat_tables([pq.read_table(tmp_path / s.path) for s in carry.shards])
    rows = {row["image_id"]: row for row in rewritten.select(["image_id", "source_uri", "source_uris"]).to_pylist()}
    assert rows["a"]["source_uris"] == ["/in/a.png"]
    assert rows["b"]["source_uris"] == ["/in/b.png", "/in/b-copy.png"] and rows["b"]["source_uri"] == "/in/b.png"


def test_a_shard_of_exact_rows_under_the_same_paths_is_referenced_and_stale_rows_are_queued(tmp_path: Path) -> None:
    whole = _shard(tmp_path, "whole", [_record("a", CURRENT), _record("b", CURRENT)])
    stale = _shard(
        tmp_path,
        "stale",
        [_record("c", {"ocr": "o0", "threshold": "t1"}), _record("d", {**CURRENT, "threshold": "t0"})],
    )
    moved = Locator("s3://b/new.tar", offset=1024, length=10, version="e1")  # c's place now, inside a tar
    work = _work({**{i: [f"/in/{i}.png"] for i in "abd"}, "c": ["s3://b/new.tar#c.png"]}, {"c": moved})
    carry = plan_carry_over(location(str(tmp_path)), [whole, stale], work, PLAN, WriterConfig(), "run")
    assert carry.shards == [whole.shard] and carry.carried_count == 2
    pixels, filters = carry.rerun_pixels.gather(), carry.rerun_filters.gather()
    assert pixels.schema == LOCATED_ROWS and filters.schema == ANNOTATION_SCHEMA
    assert pixels.column("image_id").to_pylist() == ["c"] and carry.stale_specialists == {"ocr"}
    # A row to re-annotate is read from its image's place now, by the work row's locator.
    assert pixels.column("source_uri").to_pylist() == ["s3://b/new.tar#c.png"]
    assert Locator.from_dict(pixels.column(LOCATOR_COLUMN)[0].as_py()) == moved
    assert pixels.column("stages")[0].as_py() == []  # stripped of the stale ocr and the filters that follow it
    assert filters.column("image_id").to_pylist() == ["d"] and carry.new.rows == 0
    assert (carry.rerun_pixels.rows, carry.rerun_filters.rows) == (1, 1)


def test_a_first_run_has_everything_new_and_reads_nothing(tmp_path: Path) -> None:
    work = _work({"a": ["/in/a.png"]})
    carry = plan_carry_over(location(str(tmp_path)), [], work, PLAN, WriterConfig(), "run")
    assert carry.new.gather().equals(work) and carry.carried_count == 0 and not carry.shards


def _rows_of(root: Path, shards: list) -> list[dict]:
    table = pa.concat_tables(
        [pq.read_table(root / s.path).select(["image_id", "source_uris", "stages"]) for s in shards]
    )
    return sorted(table.to_pylist(), key=lambda row: row["image_id"])


def test_carry_over_in_partitions_and_batches_carries_what_one_part_carries(tmp_path: Path) -> None:
    ids = [hashlib.sha256(bytes([n])).hexdigest() for n in range(24)]
    stale, refilter = {"ocr": "o0", "threshold": "t1"}, {**CURRENT, "threshold": "t0"}
    kinds = [CURRENT, stale, refilter]
    shards = [  # three previous shards, the middle one all exact under the same paths; then a killed run's shard
        _shard(tmp_path, "p0", [_record(ids[n], kinds[n % 3]) for n in range(0, 8)]),
        _shard(tmp_path, "p1", [_record(ids[n], CURRENT) for n in range(8, 14)]),
        _shard(tmp_path, "p2", [_record(ids[n], kinds[n % 2]) for n in range(14, 20)]),
    ]
    resumed = Candidate(_shard(tmp_path, "killed", [_record(ids[n], CURRENT) for n in (1, 4, 20)]).shard, True)
    wanted = {i: [f"/in/{i}.png"] for i in ids[:6] + ids[8:14] + ids[16:18] + ids[20:]}
    wanted[ids[0]] = [f"/in/{ids[0]}.png", "/in/moved.png"]
    work = _work(wanted).sort_by("image_id")
    kept = pa.array([ids[14], ids[15], ids[19]])  # images of p2 this run did not look at

    def carry_in(folder: str, partitions: int, rows_per_batch: int) -> tuple:
        root = tmp_path / folder
        for source in tmp_path.glob("annotations/*.parquet"):
            (root / "annotations").mkdir(parents=True, exist_ok=True)
            (root / "annotations" / source.name).write_bytes(source.read_bytes())
        cut = split_rows(work, id_partitions(work.column("image_id"), partitions), partitions)
        parts = Parts(cut, IN_PROCESS, [t.num_rows for t in cut], work.schema)
        kept_ids = split_by_id(pa.Table.from_arrays([kept], schema=IDS), partitions)  # in the same partitions
        keep = (Parts(kept_ids, IN_PROCESS, [t.num_rows for t in kept_ids], IDS), [c.shard for c in shards])
        carry = plan_carry_over(
            location(str(root)),
            [*shards, resumed],
            parts,
            PLAN,
            WriterConfig(),
            "run",
            keep=keep,
            rows_per_batch=rows_per_batch,
        )
        referenced = [s.path for s in carry.shards if "run" not in s.path]
        assert len(carry.carried.handles) == partitions  # the carried ids stay in the work table's partitions
        for k, part in enumerate(carry.carried.each()):
            assert set(id_partitions(part.column("image_id"), partitions).tolist()) <= {k}
        return (
            sorted(carry.carried_ids().to_pylist()),
            (carry.resumed, carry.kept, referenced),
            sorted(carry.rerun_pixels.gather().column("image_id").to_pylist()),
            sorted(carry.rerun_filters.gather().column("image_id").to_pylist()),
            carry.new.gather().column("image_id").to_pylist(),
            _rows_of(root, carry.shards),
        )

    whole, parts = carry_in("whole", 1, 10_000), carry_in("parts", 4, 5)
    assert parts == whole
    carried, (resumed_rows, kept_rows, referenced), pixels, filters, new, rows = whole
    assert len(carried) == len(rows) == 15 and (resumed_rows, kept_rows) == (3, 3)  # 1, 4 and 20 from the killed run
    assert referenced == ["annotations/p1.parquet", "annotations/killed.parquet"] and new == sorted(ids[21:])
    assert pixels == [ids[17]] and filters == sorted([ids[2], ids[5]])
    assert next(r for r in rows if r["image_id"] == ids[0])["source_uris"] == wanted[ids[0]]
