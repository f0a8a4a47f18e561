"""Curation of a run's work items: which go to the specialists, which are skipped and why."""

from __future__ import annotations

from engine.ingest.curation import curate
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
