"""Curation of a run's work items: which go to the specialists, which are skipped and why."""

from __future__ import annotations

from engine.ingest.curation import carried_skips, curate, with_carried_skips
from engine.ingest.probe import WorkItem
from filters.curation.settings import CurationSettings, DedupSettings, GateSettings
from schemas.arrow import SKIPPED_SCHEMA
from schemas.records import ImageMeasures


def _item(image_id: str, uri: str, width: int, height: int, phash: int, measured: bool = True) -> WorkItem:
    measures = ImageMeasures(width, height, max(width, height) / min(width, height), phash, 0, 300.0, 120.0, 50.0, 0.2)
    return WorkItem(image_id, uri, (uri,), width, height, "jpeg", measures=measures if measured else None)


def test_copies_and_gated_images_leave_the_work_in_order() -> None:
    work = [
        _item("A", "/in/a.jpg", 800, 600, 0),
        _item("B", "/in/b.jpg", 400, 300, 0b11),
        _item("C", "/in/c.jpg", 800, 600, 2**63 - 1),
        _item("D", "/in/dot.png", 8, 8, 2**40),
    ]
    curated = curate(work, CurationSettings())
    assert [item.image_id for item in curated.work] == ["A", "C"]
    assert curated.skipped.schema.equals(SKIPPED_SCHEMA)
    rows = curated.skipped.select(["image_id", "rule", "duplicate_of"]).to_pylist()
    assert rows == [
        {"image_id": "B", "rule": "near_duplicate", "duplicate_of": "A"},
        {"image_id": "D", "rule": "min_side", "duplicate_of": None},
    ]
    assert (curated.near_duplicates, curated.groups, curated.gated) == (1, 1, 1)


def test_an_annotated_image_stays_the_representative_of_its_group() -> None:
    work = [_item("OLD", "/in/old.jpg", 400, 300, 0), _item("NEW", "/in/new.jpg", 1600, 1200, 0)]
    assert [item.image_id for item in curate(work, CurationSettings(), {"OLD"}).work] == ["OLD"]
    assert [item.image_id for item in curate(work, CurationSettings()).work] == ["NEW"]


def test_items_without_measures_are_annotated_and_no_work_skips_nothing() -> None:
    work = [_item("A", "/in/a.jpg", 800, 600, 0, measured=False), _item("B", "/in/b.jpg", 800, 600, 0, False)]
    curated = curate(work, CurationSettings(gates=GateSettings(min_side=1000), dedup=DedupSettings()))
    assert [item.image_id for item in curated.work] == ["A", "B"] and curated.skipped.num_rows == 0
    empty = curate([], CurationSettings())
    assert (empty.work, empty.skipped.num_rows, empty.groups) == ([], 0, 0)


def _skipped_row(image_id: str, uris: list[str]) -> dict:
    return {"source_uri": uris[0], "image_id": image_id, "source_uris": uris, "rule": "min_side", "value": 8.0}


def test_skipped_rows_of_images_this_run_did_not_look_at_are_carried() -> None:
    import pyarrow as pa

    previous = pa.Table.from_pylist(
        [
            _skipped_row("SEEN_PATH", ["/old/a.png"]),
            _skipped_row("SEEN_ID", ["/old/b.png"]),
            _skipped_row("GONE", ["/listed/c.png"]),
            _skipped_row("ELSEWHERE", ["/other/d.png", "/listed/d.png"]),
        ],
        schema=SKIPPED_SCHEMA,
    )
    carried = carried_skips(previous, {"/old/a.png"}, {"SEEN_ID"}, lambda uri: uri.startswith("/listed/"))
    assert carried.column("image_id").to_pylist() == ["ELSEWHERE"]
    curated = with_carried_skips(curate([_item("A", "/in/a.jpg", 800, 600, 0)], CurationSettings()), carried)
    assert [item.image_id for item in curated.work] == ["A"] and curated.skipped.num_rows == 1


def test_a_copy_of_a_reference_image_is_skipped_and_the_reference_never_is() -> None:
    reference = _item("OLD", "/kept/old.jpg", 400, 300, 0)
    tiny_reference = _item("DOT", "/kept/dot.png", 8, 8, 2**50)
    work = [_item("NEW", "/in/new.jpg", 1600, 1200, 0b1), _item("C", "/in/c.jpg", 800, 600, 2**63 - 1)]
    curated = curate(work, CurationSettings(), references=[reference, tiny_reference])
    assert [item.image_id for item in curated.work] == ["C"]
    assert curated.skipped.select(["image_id", "duplicate_of"]).to_pylist() == [
        {"image_id": "NEW", "duplicate_of": "OLD"}
    ]
