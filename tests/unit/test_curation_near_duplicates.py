"""Near-duplicate groups: transformed copies grouped with their original, different images apart."""

from __future__ import annotations

import numpy as np
import pytest

from bench.near_dup_set import near_duplicate_set
from filters.curation.measures import measure_image
from filters.curation.near_duplicates import (
    collapse_identical,
    connected_components,
    group_near_duplicates,
    pick_representatives,
)
from filters.curation.settings import DedupSettings


def _columns(rows: list[dict]) -> dict[str, np.ndarray]:
    names = ("phash", "dhash", "width", "height", "source_uri", "image_id")
    columns = {name: np.array([row[name] for row in rows]) for name in names}
    columns["phash"], columns["dhash"] = columns["phash"].astype(np.uint64), columns["dhash"].astype(np.uint64)
    return columns


@pytest.fixture(scope="module")
def generated() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Eight bases of photographs and scenes (no text documents) with their six copies each."""
    rows, groups, kinds, transforms = [], [], [], []
    for i, sample in enumerate(near_duplicate_set(10, seed=7)):
        if sample.kind == "text":
            continue
        measures = measure_image(sample.pixels)
        rows.append({**measures.to_dict(), "source_uri": f"/images/{i:03d}.jpg", "image_id": f"{i:064x}"})
        groups.append(sample.group)
        kinds.append(sample.kind)
        transforms.append(sample.transform)
    return _columns(rows), np.array(groups), np.array(kinds), np.array(transforms)


def test_resized_recompressed_and_one_pixel_copies_are_grouped_with_their_original(generated) -> None:
    columns, groups, _, transforms = generated
    component = group_near_duplicates(columns, DedupSettings()).component
    for transform in ("resize", "jpeg", "resize_jpeg", "one_pixel"):
        copies = np.flatnonzero(transforms == transform)
        originals = np.flatnonzero(transforms == "original")[np.searchsorted(np.unique(groups), groups[copies])]
        assert (component[copies] == component[originals]).all(), transform


def test_different_images_are_not_grouped(generated) -> None:
    columns, groups, _, _ = generated
    component = group_near_duplicates(columns, DedupSettings()).component
    for label in np.unique(component):
        assert np.unique(groups[component == label]).size == 1


def test_every_group_is_represented_by_its_largest_image(generated) -> None:
    columns, _, _, _ = generated
    result = group_near_duplicates(columns, DedupSettings())
    pixels = columns["width"] * columns["height"]
    for label in np.unique(result.component):
        members = np.flatnonzero(result.component == label)
        assert set(result.representative[members]) == {members[np.argmax(pixels[members])]}


def _image(phash: int, dhash: int, width: int, height: int, uri: str, image_id: str) -> dict:
    return {"phash": phash, "dhash": dhash, "width": width, "height": height, "source_uri": uri, "image_id": image_id}


def test_a_tie_in_size_goes_to_the_earliest_source_uri_then_image_id() -> None:
    columns = _columns(
        [
            _image(0b1, 0, 100, 80, "b.jpg", "1"),
            _image(0b11, 0, 100, 80, "a.jpg", "3"),
            _image(0b111, 0, 100, 80, "a.jpg", "2"),
        ]
    )
    result = group_near_duplicates(columns, DedupSettings())
    assert result.representative.tolist() == [2, 2, 2]


def test_identical_hashes_of_a_different_shape_are_not_copies() -> None:
    columns = _columns([_image(42, 42, 400, 300, "a.jpg", "1"), _image(42, 42, 300, 400, "b.jpg", "2")])
    assert group_near_duplicates(columns, DedupSettings()).component.tolist() == [0, 1]


def test_the_shape_is_not_checked_when_max_aspect_change_is_null() -> None:
    columns = _columns([_image(42, 42, 400, 300, "a.jpg", "1"), _image(42, 42, 300, 400, "b.jpg", "2")])
    assert group_near_duplicates(columns, DedupSettings(max_aspect_change=None)).component.tolist() == [0, 0]


def test_every_required_hash_must_be_within_its_distance() -> None:
    far_dhash = (1 << 11) - 1  # 11 bits away from 0
    columns = _columns([_image(0, 0, 100, 100, "a.jpg", "1"), _image(0, far_dhash, 100, 100, "b.jpg", "2")])
    assert group_near_duplicates(columns, DedupSettings(dhash_max_distance=10)).component.tolist() == [0, 1]
    only_phash = DedupSettings(hashes=("phash",))
    assert group_near_duplicates(columns, only_phash).component.tolist() == [0, 0]


def test_copies_of_copies_form_one_group() -> None:
    steps = [0, (1 << 8) - 1, (1 << 16) - 1]  # 8 bits apart each, 16 end to end
    columns = _columns([_image(h, 0, 100, 100, f"{i}.jpg", str(i)) for i, h in enumerate(steps)])
    result = group_near_duplicates(columns, DedupSettings(phash_max_distance=8))
    assert result.component.tolist() == [0, 0, 0]
    assert result.pairs["left"].size == 2  # the two ends are not a pair themselves


def test_components_are_numbered_in_order_of_their_first_member() -> None:
    labels = connected_components(5, np.array([4, 1]), np.array([2, 3]))
    assert labels.tolist() == [0, 1, 2, 1, 2]


def test_representatives_prefer_pixels_over_uri() -> None:
    component = np.array([0, 0, 1])
    chosen = pick_representatives(
        component, np.array([100, 400, 9]), np.array(["a", "z", "m"]), np.array(["1", "2", "3"])
    )
    assert chosen.tolist() == [1, 1, 2]


def test_a_preferred_image_represents_its_group_before_a_larger_one() -> None:
    component = np.array([0, 0, 1, 1])
    chosen = pick_representatives(
        component,
        np.array([100, 400, 9, 50]),
        np.array(["a", "z", "m", "n"]),
        np.array(["1", "2", "3", "4"]),
        preferred=np.array([True, False, False, False]),
    )
    assert chosen.tolist() == [0, 0, 3, 3]


def test_no_images_and_one_image_need_no_pairs() -> None:
    assert group_near_duplicates(_columns([]), DedupSettings()).component.size == 0
    alone = group_near_duplicates(_columns([_image(1, 1, 10, 10, "a.jpg", "1")]), DedupSettings())
    assert (alone.component.tolist(), alone.representative.tolist(), alone.plan) == ([0], [0], None)


def test_identical_rows_collapse_into_one_node_led_by_their_first_row() -> None:
    columns = {
        "phash": np.array([5, 3, 5, 3, 5, 2**64 - 1], np.uint64),
        "width": np.array([8, 8, 8, 9, 8, 8], np.int64),
    }
    node, first = collapse_identical(columns, ("phash", "width"))
    assert node.tolist() == [2, 0, 2, 1, 2, 3]  # numbered in key order: (3, 8), (3, 9), (5, 8), (2**64 - 1, 8)
    assert first.tolist() == [1, 3, 0, 5]
