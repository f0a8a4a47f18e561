"""Curation of a run's work table: which rows go to the specialists, which are skipped and why."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from engine.ingest.curation import REFERENCE_SCHEMA, carried_skips, curate, curate_parts
from engine.ingest.probe import WORK_SCHEMA
from engine.partitions.keys import id_partitions, split_rows
from engine.partitions.parts import Parts
from engine.partitions.tasks import IN_PROCESS
from engine.refresh.scope import InputScope
from filters.curation.settings import CurationSettings, DedupSettings, GateSettings
from schemas.arrow import SKIPPED_SCHEMA
from schemas.records import ImageMeasures
from tests.support.curation_corpus import curation_corpus
from tests.support.curation_corpus import work_item as _item
from tests.support.curation_corpus import work_table as _work


def _ids(work: Parts) -> list[str]:
    return work.gather().column("image_id").to_pylist()


def test_copies_and_gated_images_leave_the_work_in_order() -> None:
    work = _work(
        _item("A", "/in/a.jpg", 800, 600, 0),
        _item("B", "/in/b.jpg", 400, 300, 0b11),
        _item("C", "/in/c.jpg", 800, 600, 2**63 - 1),
        _item("D", "/in/dot.png", 8, 8, 2**40),
    )
    curated = curate(work, CurationSettings())
    assert _ids(curated.work) == ["A", "C"]
    assert curated.work.gather().schema.equals(WORK_SCHEMA)
    assert curated.skipped.gather().schema.equals(SKIPPED_SCHEMA)
    rows = curated.skipped.gather().select(["image_id", "rule", "duplicate_of"]).to_pylist()
    assert rows == [
        {"image_id": "B", "rule": "near_duplicate", "duplicate_of": "A"},
        {"image_id": "D", "rule": "min_side", "duplicate_of": None},
    ]
    assert (curated.tally.near_duplicates, curated.tally.groups, curated.tally.gated) == (1, 1, 1)


def test_an_annotated_image_stays_the_representative_of_its_group() -> None:
    work = _work(_item("OLD", "/in/old.jpg", 400, 300, 0), _item("NEW", "/in/new.jpg", 1600, 1200, 0))
    assert _ids(curate(work, CurationSettings(), {"OLD"}).work) == ["OLD"]
    assert _ids(curate(work, CurationSettings()).work) == ["NEW"]


def test_items_without_measures_are_annotated_and_no_work_skips_nothing() -> None:
    work = _work(_item("A", "/in/a.jpg", 800, 600, 0, measured=False), _item("B", "/in/b.jpg", 800, 600, 0, False))
    curated = curate(work, CurationSettings(gates=GateSettings(min_side=1000), dedup=DedupSettings()))
    assert _ids(curated.work) == ["A", "B"] and curated.skipped.rows == curated.tally.rows == 0
    empty = curate(WORK_SCHEMA.empty_table(), CurationSettings())
    assert (empty.work.rows, empty.skipped.rows, empty.tally.groups) == (0, 0, 0)


def _skipped_row(image_id: str, uris: list[str]) -> dict:
    return {"source_uri": uris[0], "image_id": image_id, "source_uris": uris, "rule": "min_side", "value": 8.0}


def test_skipped_rows_of_images_this_run_did_not_look_at_are_carried() -> None:
    previous = pa.Table.from_pylist(
        [
            _skipped_row("SEEN_PATH", ["/old/a.png"]),
            _skipped_row("SEEN_ID", ["/old/b.png"]),
            _skipped_row("GONE", ["/listed/c.png"]),
            _skipped_row("ELSEWHERE", ["/other/d.png", "/listed/d.png"]),
        ],
        schema=SKIPPED_SCHEMA,
    )
    carried = carried_skips(previous, {"/old/a.png"}, {"SEEN_ID"}, InputScope(("/listed",)))
    assert carried.column("image_id").to_pylist() == ["ELSEWHERE"]
    curated = curate(_work(_item("A", "/in/a.jpg", 800, 600, 0), _item("D", "/in/d.png", 8, 8, 0)), CurationSettings())
    curated = curated.with_skips([carried])  # one partition: its handle is the table itself
    assert _ids(curated.work) == ["A"] and curated.skipped.gather()["image_id"].to_pylist() == ["D", "ELSEWHERE"]
    assert curated.tally.rules == {"min_side": 2} and curated.tally.gated == 2


def test_a_copy_of_a_reference_image_is_skipped_and_the_reference_never_is() -> None:
    reference = _item("OLD", "/kept/old.jpg", 400, 300, 0)
    tiny_reference = _item("DOT", "/kept/dot.png", 8, 8, 2**50)
    references = pa.Table.from_pylist([reference, tiny_reference]).select(REFERENCE_SCHEMA.names).cast(REFERENCE_SCHEMA)
    work = _work(_item("NEW", "/in/new.jpg", 1600, 1200, 0b1), _item("C", "/in/c.jpg", 800, 600, 2**63 - 1))
    curated = curate(work, CurationSettings(), references=references)
    assert _ids(curated.work) == ["C"]
    assert curated.skipped.gather().select(["image_id", "duplicate_of"]).to_pylist() == [
        {"image_id": "NEW", "duplicate_of": "OLD"}
    ]


@pytest.mark.parametrize("count", [1, 3])
def test_kept_references_are_the_kept_rows_with_measures_and_their_places(tmp_path, count: int) -> None:
    from engine.config.settings import WriterConfig
    from engine.partitions.keys import split_by_id
    from engine.partitions.parts import IDS
    from engine.refresh.previous_parts import kept_references_in_parts
    from engine.store.location import location
    from engine.store.writer import write_shard
    from schemas.arrow import ANNOTATION_SCHEMA
    from schemas.records import ImageRecord

    measures = ImageMeasures(800, 600, 800 / 600, 5, 6, 300.0, 120.0, 50.0, 0.2)
    rows = [
        ImageRecord("KEPT", "/in/k.jpg", 800, 600, "jpeg", ["/in/k.jpg", "/in/k2.jpg"], measures=measures),
        ImageRecord("NO_PLACES", "/in/n.jpg", 800, 600, "jpeg", [], measures=measures),
        ImageRecord("UNMEASURED", "/in/u.jpg", 800, 600, "jpeg", ["/in/u.jpg"]),
        ImageRecord("NOT_KEPT", "/in/x.jpg", 800, 600, "jpeg", ["/in/x.jpg"], measures=measures),
    ]
    table = pa.Table.from_pylist([row.to_row() for row in rows], schema=ANNOTATION_SCHEMA)
    root = location(tmp_path)
    new = write_shard(table, root, "annotations/new.parquet", WriterConfig(), {})
    old = write_shard(table.drop_columns(["measures"]), root, "annotations/old.parquet", WriterConfig(), {})
    ids = split_by_id(pa.table({"image_id": ["KEPT", "NO_PLACES", "UNMEASURED"]}, IDS), count)
    kept_ids = Parts(ids, IN_PROCESS, [part.num_rows for part in ids], IDS)
    in_parts = kept_references_in_parts(root, [new, old], kept_ids, batch_rows=2)
    assert len(in_parts.handles) == count and in_parts.rows == 2  # the old shard's rows have no measures
    for part, wanted in zip(in_parts.each(), ids, strict=True):  # each kept image's row in its partition
        assert set(part["image_id"].to_pylist()) <= set(wanted["image_id"].to_pylist())
    found = in_parts.gather().sort_by("image_id")
    assert found.schema.equals(REFERENCE_SCHEMA)
    assert found.select(["image_id", "source_uris", "width"]).to_pylist() == [
        {"image_id": "KEPT", "source_uris": ["/in/k.jpg", "/in/k2.jpg"], "width": 800},
        {"image_id": "NO_PLACES", "source_uris": ["/in/n.jpg"], "width": 800},
    ]
    kept = ImageMeasures.from_dict(found.column("measures")[0].as_py())
    assert (kept.width, kept.phash, kept.dhash, kept.sharpness) == (800, 5, 6, 300.0)


def test_curation_in_id_partitions_decides_what_one_part_decides() -> None:
    work, references = curation_corpus(600)
    annotated = work.column("image_id").to_pylist()[::9]
    whole = curate(work, CurationSettings(), annotated, references)
    partitions = split_rows(work, id_partitions(work.column("image_id"), 4), 4)
    parts = curate_parts(
        Parts(partitions, IN_PROCESS, [t.num_rows for t in partitions], work.schema),
        CurationSettings(),
        annotated,
        references,
    )
    skipped = whole.skipped.gather()
    assert parts.work.gather().equals(whole.work.gather())
    assert parts.skipped.gather().sort_by("source_uri").equals(skipped)  # each partition sorted by path
    assert len(parts.work.handles) == 4 and parts.work.rows == whole.work.rows == parts.work.gather().num_rows
    for k, part in enumerate(parts.skipped.each()):  # each skipped row in its image's partition
        assert set(id_partitions(part.column("image_id"), 4).tolist()) == {k}
    assert parts.tally.rules == whole.tally.rules and parts.tally.groups == whole.tally.groups
    assert parts.skipped.counts == tuple(p.num_rows for p in parts.skipped.each())
    copies = skipped.filter(pc.equal(skipped.column("rule"), "near_duplicate"))
    at = {image_id: k for k, part in enumerate(partitions) for image_id in part.column("image_id").to_pylist()}
    pairs = zip(copies["image_id"].to_pylist(), copies["duplicate_of"].to_pylist(), strict=True)
    across = [at[copy] != at.get(representative) for copy, representative in pairs]
    assert whole.tally.gated >= 20 and copies.num_rows >= 300 and sum(across) >= 200
    assert set(copies["duplicate_of"].to_pylist()) & set(references["image_id"].to_pylist())  # copies of references
    kept_as_they_are = set(references["image_id"].to_pylist()) - set(work["image_id"].to_pylist())
    assert not set(skipped["image_id"].to_pylist()) & kept_as_they_are


def test_the_tally_counts_a_group_once_whichever_partitions_hold_its_copies() -> None:
    from engine.ingest.skipped_parts import tally_skips

    def copy(image_id: str, representative: str | None, rule: str = "near_duplicate") -> dict:
        return {"source_uri": f"/in/{image_id}", "image_id": image_id, "rule": rule, "duplicate_of": representative}

    parts = [[copy("X", "R1"), copy("G", None, "min_side")], [copy("Z", "R2")], [copy("Y", "R1"), copy("W", "R2")]]
    tables = [pa.Table.from_pylist(rows, schema=SKIPPED_SCHEMA) for rows in parts]
    tally = tally_skips(Parts(tables, IN_PROCESS, [t.num_rows for t in tables], SKIPPED_SCHEMA))
    assert (tally.rules, tally.groups, tally.near_duplicates, tally.gated) == (
        {"near_duplicate": 4, "min_side": 1},
        2,
        4,
        1,
    )
