"""Florence-2 location quantization, quads and masks."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.geometry import (
    box_to_quad,
    dequantize,
    dequantize_points,
    order_quad_clockwise,
    quad_to_box,
    quantize,
    quantize_points,
)
from schemas.masks import decode_mask, encode_mask, mask_area, mask_iou_matrix, mask_to_box, mask_to_polygon


def test_quantize_uses_floor_of_coord_over_bin_size_clamped() -> None:
    assert quantize([0, 0.63, 639.99, 640, 1000], 640).tolist() == [0, 0, 999, 999, 999]
    assert quantize([-3.0], 640).tolist() == [0]
    assert quantize_points([52.0, 333.0, 932.0, 774.0], 1000, 1000) == [52, 333, 932, 774]


def test_dequantize_returns_bin_centres() -> None:
    assert dequantize([0, 999], 1000).tolist() == [0.5, 999.5]
    assert dequantize_points([500, 500], 640, 480) == [320.32, 240.24]


def test_quantization_round_trip_is_within_one_bin() -> None:
    rng = np.random.default_rng(0)
    for width, height in [(640, 480), (37, 1999), (4000, 3000)]:
        points = np.stack([rng.uniform(0, width, 500), rng.uniform(0, height, 500)], axis=1).reshape(-1)
        back = np.asarray(dequantize_points(quantize_points(points.tolist(), width, height), width, height))
        bins = np.resize([width / 1000, height / 1000], len(points))
        assert np.all(np.abs(back - points) <= bins)


def test_quads_run_clockwise_from_top_left() -> None:
    shuffled = [(100, 50), (10, 60), (12, 10), (98, 5)]
    assert order_quad_clockwise(shuffled) == (12, 10, 98, 5, 100, 50, 10, 60)
    assert quad_to_box((12, 10, 98, 5, 100, 50, 10, 60)) == (10, 5, 100, 60)
    assert box_to_quad((1, 2, 3, 4)) == (1, 2, 3, 2, 3, 4, 1, 4)


def test_mask_rle_round_trip_area_box_iou_and_polygon() -> None:
    binary = np.zeros((40, 60), dtype=bool)
    binary[10:30, 20:50] = True
    mask = encode_mask(binary)
    assert mask.size == (40, 60)
    assert np.array_equal(decode_mask(mask), binary)
    assert mask_area(mask) == 600
    assert mask_to_box(mask) == (20, 10, 50, 30)
    other = np.zeros_like(binary)
    other[10:30, 35:65] = True
    iou = mask_iou_matrix([mask], [encode_mask(other), mask])
    assert iou[0, 0] == pytest.approx(300 / 800) and iou[0, 1] == pytest.approx(1.0)
    polygon = mask_to_polygon(binary)
    assert polygon is not None and quad_to_box(polygon) == (20, 10, 49, 29)
