"""From probe results with measures to (representatives, skipped): every image in exactly one table."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest
from skimage import data

from filters.curation.measures import measure_image
from filters.curation.selection import (
    NEAR_DUPLICATE,
    copies_of_members,
    gate_part,
    group_members,
    select_for_annotation,
)
from filters.curation.settings import CurationSettings, DedupSettings, GateSettings
from schemas.arrow import IMAGE_MEASURES, SKIPPED_SCHEMA
from schemas.records import ImageMeasures

PROBES = pa.schema([("source_uri", pa.string()), ("image_id", pa.string()), ("measures", IMAGE_MEASURES)])


def _measures(phash: int, width: int = 640, height: int = 480, **changes: float) -> dict:
    measures = ImageMeasures(width, height, max(width, height) / min(width, height), phash, 0, 300.0, 120.0, 50.0, 0.2)
    return dataclasses.asdict(dataclasses.replace(measures, **changes))


def _probes(*rows: tuple[str, str, dict | None]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"source_uri": uri, "image_id": image_id, "measures": measures} for uri, image_id, measures in rows],
        schema=PROBES,
    )


def test_a_copy_is_skipped_with_its_representative_and_distances() -> None:
    probes = _probes(("/a/big.jpg", "A", _measures(0b111, 1280, 960)), ("/a/small.jpg", "B", _measures(0, 640, 480)))
    selection = select_for_annotation(probes, CurationSettings())
    assert selection.representatives.column("image_id").to_pylist() == ["A"]
    assert selection.representatives.column("near_duplicates").to_pylist() == [["B"]]
    assert selection.skipped.to_pylist() == [
        {
            "source_uri": "/a/small.jpg",
            "image_id": "B",
            "source_uris": ["/a/small.jpg"],
            "rule": NEAR_DUPLICATE,
            "value": 3.0,
            "threshold": 8.0,
            "detail": "phash 3 (max 8), dhash 0 (max 10) from /a/big.jpg",
            "duplicate_of": "A",
            "measures": pytest.approx(_measures(0, 640, 480)),
        }
    ]


def test_real_resized_copy_of_a_photograph_is_skipped() -> None:
    pixels = data.coffee()
    half = pixels[::2, ::2]
    probes = _probes(
        ("/p/coffee.jpg", "C1", measure_image(pixels).to_dict()),
        ("/p/coffee_small.jpg", "C2", measure_image(np.ascontiguousarray(half)).to_dict()),
        ("/p/rocket.jpg", "R", measure_image(data.rocket()).to_dict()),
    )
    selection = select_for_annotation(probes, CurationSettings())
    assert selection.representatives.column("image_id").to_pylist() == ["C1", "R"]
    assert selection.skipped.column("duplicate_of").to_pylist() == ["C1"]


def test_a_gated_image_is_skipped_with_value_and_threshold_and_never_represents_copies() -> None:
    gated = _measures(0, 4000, 3000, sharpness=2.0)
    probes = _probes(("/g/blurry_big.jpg", "G", gated), ("/g/sharp_small.jpg", "S", _measures(0, 400, 300)))
    settings = CurationSettings(gates=GateSettings(min_sharpness=10.0))
    selection = select_for_annotation(probes, settings)
    assert selection.representatives.column("image_id").to_pylist() == ["S"]
    skipped = selection.skipped.to_pylist()
    assert [(r["image_id"], r["rule"], r["value"], r["threshold"], r["duplicate_of"]) for r in skipped] == [
        ("G", "min_sharpness", 2.0, 10.0, None)
    ]


def test_rows_without_measures_are_annotated() -> None:
    probes = _probes(("/x/old.jpg", "O", None), ("/x/new.jpg", "N", _measures(0)))
    selection = select_for_annotation(probes, CurationSettings())
    assert selection.representatives.column("image_id").to_pylist() == ["O", "N"]
    assert selection.skipped.num_rows == 0


def test_with_dedup_off_copies_are_annotated_and_gates_still_apply() -> None:
    probes = _probes(
        ("/d/a.jpg", "A", _measures(0)), ("/d/b.jpg", "B", _measures(0)), ("/d/dot.png", "D", _measures(1, 8, 8))
    )
    settings = CurationSettings(dedup=DedupSettings(enabled=False))
    selection = select_for_annotation(probes, settings)
    assert selection.representatives.column("image_id").to_pylist() == ["A", "B"]
    assert selection.skipped.column("rule").to_pylist() == ["min_side"]


def test_every_image_ends_in_exactly_one_table() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        phash = int(rng.integers(0, 8)) if i % 2 else int(rng.integers(0, 2**63))
        width = int(rng.integers(10, 900))
        rows.append((f"/r/{i:02d}.jpg", f"id{i:02d}", _measures(phash, width, width)))
    selection = select_for_annotation(_probes(*rows), CurationSettings())
    kept = selection.representatives.column("image_id").to_pylist()
    skipped = selection.skipped.column("image_id").to_pylist()
    assert sorted(kept + skipped) == [f"id{i:02d}" for i in range(60)]
    assert set(selection.skipped.column("duplicate_of").drop_null().to_pylist()) <= set(kept)


def test_the_skipped_table_has_the_skipped_schema() -> None:
    probes = _probes(("/s/a.jpg", "A", _measures(0)), ("/s/b.jpg", "B", _measures(0, 320, 240)))
    assert select_for_annotation(probes, CurationSettings()).skipped.schema.equals(SKIPPED_SCHEMA)


def test_other_probe_columns_are_kept_on_representatives() -> None:
    probes = _probes(("/k/a.jpg", "A", _measures(0))).append_column("size_bytes", pa.array([1234], pa.int64()))
    representatives = select_for_annotation(probes, CurationSettings()).representatives
    assert representatives.column("size_bytes").to_pylist() == [1234]


def test_an_image_id_listed_twice_is_refused() -> None:
    probes = _probes(("/t/a.jpg", "A", _measures(0)), ("/t/b.jpg", "A", _measures(0)))
    with pytest.raises(ValueError, match="image_id twice"):
        select_for_annotation(probes, CurationSettings())


def test_a_probe_table_without_measures_is_refused_naming_the_column() -> None:
    with pytest.raises(ValueError, match="measures"):
        select_for_annotation(pa.table({"source_uri": ["a"], "image_id": ["A"]}), CurationSettings())


def test_an_image_annotated_before_represents_a_larger_new_copy() -> None:
    probes = _probes(("/a/old.jpg", "OLD", _measures(0, 640, 480)), ("/a/new_big.jpg", "NEW", _measures(1, 1280, 960)))
    probes = probes.append_column("annotated", pa.array([True, False]))
    selection = select_for_annotation(probes, CurationSettings())
    assert selection.representatives.column("image_id").to_pylist() == ["OLD"]
    assert selection.skipped.select(["image_id", "duplicate_of"]).to_pylist() == [
        {"image_id": "NEW", "duplicate_of": "OLD"}
    ]


def test_a_skipped_row_lists_every_path_of_its_bytes() -> None:
    probes = _probes(("/p/a.jpg", "A", _measures(0, 800, 600)), ("/p/b.jpg", "B", _measures(0, 400, 300)))
    probes = probes.append_column("source_uris", pa.array([["/p/a.jpg"], ["/p/b.jpg", "/q/b_again.jpg"]]))
    skipped = select_for_annotation(probes, CurationSettings()).skipped
    assert skipped.column("source_uris").to_pylist() == [["/p/b.jpg", "/q/b_again.jpg"]]


def test_many_images_each_end_in_one_table_and_every_copy_points_at_a_kept_representative() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(3000):
        if i % 97 == 5:
            measures = None  # unmeasured: annotated
        elif i % 10 == 9:
            measures = dict(rows[-1][2] or _measures(0), phash=(rows[-1][2] or _measures(0))["phash"] ^ 0b101)
        else:
            side = int(rng.integers(8, 2000))
            measures = _measures(int(rng.integers(0, 2**63)), side, side)
        rows.append((f"/m/{i:05d}.jpg", f"id{i:05d}", measures))
    probes = _probes(*rows).append_column("annotated", pa.array([i % 7 == 0 for i in range(3000)]))
    selection = select_for_annotation(probes, CurationSettings())
    kept = selection.representatives.column("image_id").to_pylist()
    skipped = selection.skipped.to_pylist()
    assert sorted(kept + [row["image_id"] for row in skipped]) == [f"id{i:05d}" for i in range(3000)]
    copies = [row for row in skipped if row["rule"] == NEAR_DUPLICATE]
    gated = [row for row in skipped if row["rule"] == "min_side"]
    assert len(copies) > 200 and len(gated) > 0 and len(copies) + len(gated) == len(skipped)
    assert {row["duplicate_of"] for row in copies} <= set(kept)
    listed = dict(zip(kept, selection.representatives.column("near_duplicates").to_pylist(), strict=True))
    assert sorted(i for ids in listed.values() for i in ids) == sorted(row["image_id"] for row in copies)
    assert all(row["image_id"] in listed[row["duplicate_of"]] for row in copies)
    assert [row["source_uri"] for row in skipped] == sorted(row["source_uri"] for row in skipped)
    assert all(row["value"] <= row["threshold"] or "through" in row["detail"] for row in copies)


def test_grouping_returns_only_the_members_of_groups_and_their_copies_follow_from_them() -> None:
    first = _probes(
        ("/a/big.jpg", "A", _measures(0b111, 1280, 960)),
        ("/a/alone.jpg", "C", _measures(2**60 - 1)),
        ("/a/other.jpg", "D", _measures(0x0F0F0F0F0F0F0F0F)),
    )
    second = _probes(("/b/small.jpg", "B", _measures(0, 640, 480)), ("/b/far.jpg", "E", _measures(0xFFFF << 40)))
    settings = CurationSettings()
    parts = [gate_part(first, settings), gate_part(second, settings)]
    members = group_members([part.grouping for part in parts], settings)
    assert members.parts == 2 and list(zip(members.part, members.position, strict=True)) == [(0, 0), (1, 0)]
    assert members.component[0] == members.component[1] and members.columns["width"].tolist() == [1280, 640]
    tables = [first, second]

    def rows_at(positions: list[np.ndarray]) -> list[pa.Table]:
        return [table.take(pa.array(at, pa.int64())) for table, at in zip(tables, positions, strict=True)]

    copies = copies_of_members(members, rows_at, settings)
    assert (copies.copy_part.tolist(), copies.copy_position.tolist()) == ([1], [0])  # B, a copy of A
    assert copies.skipped.column("duplicate_of").to_pylist() == ["A"]
    alone = group_members([parts[0].grouping], settings)
    assert alone.part.size == 0 and copies_of_members(alone, lambda at: [], settings).skipped.num_rows == 0
