"""Binary masks as COCO RLE (pycocotools) and simplified polygons (OpenCV contours)."""

from __future__ import annotations

import cv2
import numpy as np
from pycocotools import mask as coco_mask

from schemas.records import Mask


def encode_mask(binary: np.ndarray) -> Mask:
    """Encode an (H, W) boolean/0-1 array as compressed COCO RLE."""
    rle = coco_mask.encode(np.asfortranarray(binary.astype(np.uint8)))
    height, width = rle["size"]
    return Mask(size=(int(height), int(width)), counts=rle["counts"].decode("ascii"))


def decode_mask(mask: Mask) -> np.ndarray:
    """Decode a :class:`Mask` to an (H, W) boolean array."""
    return coco_mask.decode(to_coco_rle(mask)).astype(bool)


def to_coco_rle(mask: Mask) -> dict:
    """The pycocotools dict form of a mask."""
    return {"size": [mask.size[0], mask.size[1]], "counts": mask.counts.encode("ascii")}


def mask_area(mask: Mask) -> int:
    return int(coco_mask.area(to_coco_rle(mask)))


def mask_to_box(mask: Mask) -> tuple[float, float, float, float]:
    """The tight box (x0, y0, x1, y1) around a mask."""
    x, y, w, h = coco_mask.toBbox(to_coco_rle(mask)).tolist()
    return (x, y, x + w, y + h)


def mask_iou_matrix(masks_a: list[Mask], masks_b: list[Mask]) -> np.ndarray:
    """Pairwise IoU between two lists of masks, shape (len(a), len(b))."""
    if not masks_a or not masks_b:
        return np.zeros((len(masks_a), len(masks_b)))
    a = [to_coco_rle(m) for m in masks_a]
    b = [to_coco_rle(m) for m in masks_b]
    return np.asarray(coco_mask.iou(a, b, [0] * len(b)), dtype=np.float64).reshape(len(a), len(b))


def count_fragments(binary: np.ndarray) -> int:
    """Number of connected components in a mask."""
    count, _ = cv2.connectedComponents(binary.astype(np.uint8))
    return count - 1


def mask_to_polygon(binary: np.ndarray, tolerance: float = 1.5) -> tuple[float, ...] | None:
    """The outer contour of the largest component, simplified (Douglas-Peucker, ``tolerance`` px)."""
    contours, _ = cv2.findContours(binary.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    largest = max(contours, key=cv2.contourArea)
    simplified = cv2.approxPolyDP(largest, tolerance, True).reshape(-1, 2)
    if len(simplified) < 3:
        return None
    return tuple(float(v) for v in simplified.reshape(-1))
