"""Box IoU (two boxes, aligned pairs, all pairs) and regions as columns; NMS itself is in test_filters_nms."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.boxes import RegionColumns, box_iou, boxes_of, iou_matrix, pair_iou
from schemas.records import Provenance, Region
from schemas.score_prior import UnscoredPriors

A = Provenance("detector_a", "m")
B = Provenance("detector_b", "m")


def test_box_iou() -> None:
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0


def test_box_iou_of_nested_touching_and_empty_boxes() -> None:
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (2, 2, 7, 7)) == pytest.approx(25 / 100)
    assert box_iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0  # sharing an edge is no overlap
    assert box_iou((5, 5, 5, 5), (5, 5, 5, 5)) == 0.0  # two empty boxes: 0, not 0 / 0
    assert box_iou((10, 10, 0, 0), (0, 0, 10, 10)) == 0.0  # an inverted box has no area


def test_pair_iou_compares_rows_and_iou_matrix_compares_all_pairs() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 4, 4]])
    b = np.array([[5, 0, 15, 10], [0, 0, 2, 2]])
    np.testing.assert_allclose(pair_iou(a, b), [50 / 150, 4 / 16])
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150, 4 / 100], [0.0, 4 / 16]])
    assert iou_matrix(a, b).dtype == np.float64  # integer boxes are read as floats


def test_iou_matrix_of_no_boxes_has_an_empty_side() -> None:
    none = boxes_of([])
    assert none.shape == (0, 4)
    assert iou_matrix(none, np.array([[0.0, 0.0, 1.0, 1.0]])).shape == (0, 1)
    assert iou_matrix(np.array([[0.0, 0.0, 1.0, 1.0]]), none).shape == (1, 0)


def test_region_columns_hold_boxes_scores_and_group_ids() -> None:
    regions = [
        Region("object", (0, 0, 10, 10), "Cat", A, score=0.9),
        Region("object", (1, 1, 10, 10), "cat ", A, score=None),
        Region("object", (0, 0, 5, 5), "dog", B, score=0.4),
    ]
    columns = RegionColumns.of(regions, images=[0, 0, 1])
    np.testing.assert_array_equal(columns.boxes, boxes_of(regions))
    # An unscored region ranks with its source's prior (0.5 by default), not +inf above a 0.9 box.
    assert columns.scores.tolist() == [0.9, 0.5, 0.4]
    trusted = RegionColumns.of(regions, images=[0, 0, 1], priors=UnscoredPriors(by_source={A.source: 1.0}))
    assert trusted.scores.tolist() == [0.9, 1.0, 0.4]
    assert columns.labels.tolist() == [0, 0, 1] and columns.sources.tolist() == [0, 0, 1]
    by_source = columns.groups(class_aware=False)
    assert by_source[0] == by_source[1] != by_source[2]
    taken = columns.take(np.array([2]))
    assert taken.regions == [regions[2]] and taken.images.tolist() == [1]
