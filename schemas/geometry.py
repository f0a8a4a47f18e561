"""Boxes, quads and Florence-2 location quantization.

Boxes are (x0, y0, x1, y1) in pixels. Quads are 8 floats (x0, y0, ..., x3, y3),
clockwise from the top-left corner. Florence-2 writes every coordinate as one of
1000 bins: ``bin = floor(coord / (size / 1000))`` clamped to 0..999, read back as
``(bin + 0.5) * size / 1000``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LOCATION_BINS = 1000

Box = tuple[float, float, float, float]


def quantize(coords: np.ndarray | Sequence[float], sizes: np.ndarray | Sequence[float]) -> np.ndarray:
    """Quantize coordinates to Florence-2 bins; ``sizes`` broadcasts against ``coords``."""
    values = np.asarray(coords, dtype=np.float64)
    scale = np.asarray(sizes, dtype=np.float64) / LOCATION_BINS
    return np.clip(np.floor(values / scale), 0, LOCATION_BINS - 1).astype(np.int64)


def dequantize(bins: np.ndarray | Sequence[int], sizes: np.ndarray | Sequence[float]) -> np.ndarray:
    """Map bins back to pixel coordinates at the bin centres."""
    return (np.asarray(bins, dtype=np.float64) + 0.5) * np.asarray(sizes, dtype=np.float64) / LOCATION_BINS


def xy_sizes(count: int, width: int, height: int) -> np.ndarray:
    """Alternating (width, height, width, height, ...) of length ``count``, for x/y coordinate lists."""
    return np.resize(np.array([width, height], dtype=np.float64), count)


def quantize_points(points: Sequence[float], width: int, height: int) -> list[int]:
    """Quantize an x/y-interleaved list (box, quad or polygon) for an image of ``width`` x ``height``."""
    return quantize(points, xy_sizes(len(points), width, height)).tolist()


def dequantize_points(bins: Sequence[int], width: int, height: int) -> list[float]:
    """Inverse of :func:`quantize_points` (to bin centres)."""
    return dequantize(bins, xy_sizes(len(bins), width, height)).tolist()


def quad_to_box(quad: Sequence[float]) -> Box:
    """The axis-aligned box that encloses a quad (or any x/y-interleaved polygon)."""
    xs, ys = quad[0::2], quad[1::2]
    return (float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys)))


def box_to_quad(box: Sequence[float]) -> tuple[float, ...]:
    """The four corners of a box, clockwise from the top-left."""
    x0, y0, x1, y1 = box
    return (x0, y0, x1, y0, x1, y1, x0, y1)


def order_quad_clockwise(points: np.ndarray | Sequence[Sequence[float]]) -> tuple[float, ...]:
    """Order four (x, y) corners clockwise (in image coordinates) starting at the top-left one."""
    corners = np.asarray(points, dtype=np.float64).reshape(4, 2)
    centre = corners.mean(axis=0)
    # y grows downwards, so increasing atan2 angle is clockwise on screen.
    angles = np.arctan2(corners[:, 1] - centre[1], corners[:, 0] - centre[0])
    ordered = corners[np.argsort(angles)]
    start = int(np.argmin(ordered.sum(axis=1)))
    return tuple(float(v) for v in np.roll(ordered, -start, axis=0).reshape(-1))


def clip_box(box: Sequence[float], width: int, height: int) -> Box:
    """Clip a box to the image rectangle."""
    x0, y0, x1, y1 = box
    return (
        float(min(max(x0, 0.0), width)),
        float(min(max(y0, 0.0), height)),
        float(min(max(x1, 0.0), width)),
        float(min(max(y1, 0.0), height)),
    )


def box_area(box: Sequence[float]) -> float:
    """Area of a box; zero for degenerate or inverted boxes."""
    x0, y0, x1, y1 = box
    return max(0.0, x1 - x0) * max(0.0, y1 - y0)
