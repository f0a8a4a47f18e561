"""Boxes as arrays: IoU (of two boxes, of aligned pairs, of all pairs), NMS, and regions as columns.

The one home of box overlap: filters, specialists, refinement merging, the audit and the benchmarks
import it. Boxes are (x0, y0, x1, y1) pixels; arrays of them are (N, 4). :func:`box_nms` runs
torchvision's NMS kernel per group (torch is imported on first use, so importing schemas stays light) and
records which kept box suppressed each dropped one; :class:`RegionColumns` is a batch of regions as
parallel arrays, in the style of supervision's ``Detections``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from schemas.masks import mask_iou_matrix
from schemas.records import Region
from schemas.score_prior import UnscoredPriors, effective_score

# Pairs of boxes whose IoU is computed at once when finding suppressors (bounds memory).
_PAIR_CHUNK = 4_000_000
# Whole groups are packed into kernel calls of up to this many boxes (torchvision's coordinate trick):
# fewer calls, while the kernel's all-pairs scan across the packed groups stays small.
_BLOCK = 256
# Suppressed boxes per dense block when attributing within one large group.
_ROWS = 256


def boxes_of(regions: Sequence[Region]) -> np.ndarray:
    """The boxes of ``regions`` as an (N, 4) float64 array (shape (0, 4) for none)."""
    return np.asarray([r.bbox for r in regions], dtype=np.float64).reshape(-1, 4)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two boxes (0 where both are empty)."""
    return float(_iou(*(float(v) for v in a), *(float(v) for v in b)))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of (N, 4) ``a`` with every box of (M, 4) ``b``: (N, M) (0 where both are empty)."""
    # One 2-D operation per coordinate: broadcasting over (N, M, 2) views is several times slower, and
    # np.maximum beats clip(), whose Python-level wrapper costs more than the arithmetic on small inputs.
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return _iou(*(a[:, i, None] for i in range(4)), *(b[None, :, i] for i in range(4)))


def pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of the boxes ``a[i]`` and ``b[i]`` for every i (both (P, 4) xyxy)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return _iou(*(a[:, i] for i in range(4)), *(b[:, i] for i in range(4)))


def _iou(ax0, ay0, ax1, ay1, bx0, by0, bx1, by1) -> np.ndarray:  # type: ignore[no-untyped-def]
    width = np.maximum(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0)
    height = np.maximum(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0)
    inter = width * height
    union = np.maximum(ax1 - ax0, 0) * np.maximum(ay1 - ay0, 0) + np.maximum(bx1 - bx0, 0) * np.maximum(by1 - by0, 0)
    union = union - inter
    return inter / np.maximum(union, np.finfo(union.dtype).tiny)


@dataclass(frozen=True, slots=True)
class Suppression:
    """Per input box: ``by`` is the index of the kept box that suppressed it (-1 if kept), ``iou`` their IoU."""

    by: np.ndarray
    iou: np.ndarray

    @property
    def kept(self) -> np.ndarray:
        return self.by < 0


def score_ranks(scores: np.ndarray) -> np.ndarray:
    """Position of each box in descending score order (ties keep input order)."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[order] = np.arange(len(scores))
    return ranks


def _blocks(group_starts: np.ndarray, count: int, size: int) -> Iterator[tuple[int, int]]:
    """Consecutive runs of whole groups (sorted order) of at most ``size`` boxes; a larger group runs alone."""
    low = previous = 0
    for end in [*group_starts[1:].tolist(), count]:
        if end - low > size and previous > low:
            yield low, previous
            low = previous
        previous = end
    yield low, count


def _kernel(boxes, scores, threshold, groups, by, iou) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """torchvision's NMS kernel per group: (kept flags, visit position of each kept box within its group's order).
    Groups too large to share a kernel call get their suppressors here, densely."""
    import torch  # imported on first use: parsing a profile should not load torch
    from torchvision.ops import nms

    count = len(boxes)
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts_mask = np.ones(count, dtype=bool)
    starts_mask[1:] = sorted_groups[1:] != sorted_groups[:-1]
    local_group = np.cumsum(starts_mask)
    blocks = list(_blocks(np.flatnonzero(starts_mask), count, _BLOCK))
    # Shift groups apart within each block, all blocks at once, so boxes of different groups never overlap:
    # a box moves by its group's rank in its block times a span wider than every box (exact in float64).
    sorted_boxes = boxes[order]
    span = sorted_boxes.max() - sorted_boxes.min() + 1.0
    first_group = np.repeat(local_group[[low for low, _ in blocks]], [high - low for low, high in blocks])
    shifted = sorted_boxes + ((local_group - first_group) * span)[:, None]
    shifted_tensor, scores_tensor = torch.from_numpy(shifted), torch.from_numpy(scores[order])
    kept = np.zeros(count, dtype=bool)
    visit = np.zeros(count, dtype=np.int64)
    for low, high in blocks:
        keep = nms(shifted_tensor[low:high], scores_tensor[low:high], threshold).numpy()
        part = order[low:high]
        kept[part[keep]] = True
        visit[part[keep]] = np.arange(len(keep))
        if high - low > _BLOCK:
            _attribute_dense(shifted[low:high], keep, threshold, part, by, iou)
    return kept, visit


def _attribute_dense(boxes, keep, threshold, index, by, iou) -> None:  # type: ignore[no-untyped-def]
    """Suppressors within one large group, in dense blocks: suppressed boxes sorted by x0 in blocks of
    ``_ROWS``, each against the kept boxes whose x0 falls in the block's candidate window (see
    :func:`_candidate_windows`); the suppressor is the hit the kernel visited first (``keep`` order)."""
    suppressed_mask = np.ones(len(boxes), dtype=bool)
    suppressed_mask[keep] = False
    suppressed = np.flatnonzero(suppressed_mask)
    kept_boxes = boxes[keep]
    by_x = np.argsort(kept_boxes[:, 0], kind="stable")
    kept_x0 = kept_boxes[by_x, 0]
    suppressed = suppressed[np.argsort(boxes[suppressed, 0], kind="stable")]
    for start in range(0, len(suppressed), _ROWS):
        rows = suppressed[start : start + _ROWS]
        row_boxes = boxes[rows]
        columns = by_x
        if threshold > 0:
            width = row_boxes[:, 2] - row_boxes[:, 0]
            low = (row_boxes[:, 0] + (threshold - 1 / threshold) * width).min() - 1e-9
            high = (row_boxes[:, 2] - threshold * width).max() + 1e-9
            columns = by_x[np.searchsorted(kept_x0, low, "left") : np.searchsorted(kept_x0, high, "right")]
        overlaps = iou_matrix(row_boxes, kept_boxes[columns])
        visited = np.where(overlaps > threshold, columns[None, :], len(keep))
        first = visited.argmin(axis=1)
        lines = np.arange(len(rows))
        missing = visited[lines, first] == len(keep)  # rounding at the threshold: take the best overlap
        first[missing] = overlaps[missing].argmax(axis=1)
        by[index[rows]] = index[keep[columns[first]]]
        iou[index[rows]] = overlaps[lines, first]


def _candidate_windows(boxes, groups, suppressed, kept_index, threshold):  # type: ignore[no-untyped-def]
    """Kept boxes sorted by (group, x0), and per suppressed box the slice of them that can overlap it above
    ``threshold``: IoU > t needs an x-overlap above t times either width, so x0 of the kept box lies in
    (x0 + (t - 1/t) * w, x1 - t * w) of the suppressed box (any x0 when t <= 0)."""
    low_x, high_x = boxes[:, 0].min(), boxes[:, 0].max()
    scale = 0.5 / (high_x - low_x + 1.0)  # x0 -> [0, 0.5): group + scaled x0 is one sorted key
    keys = groups[kept_index] + (boxes[kept_index, 0] - low_x) * scale
    order = np.argsort(keys, kind="stable")
    kept_index, keys = kept_index[order], keys[order]
    s_boxes, s_groups = boxes[suppressed], groups[suppressed].astype(np.float64)
    width = s_boxes[:, 2] - s_boxes[:, 0]
    if threshold > 0:
        below = s_boxes[:, 0] + (threshold - 1 / threshold) * width
        above = s_boxes[:, 2] - threshold * width
        slack = 1e-9  # a candidate filter only: widen it past rounding, the IoU test decides
        low_key = s_groups + np.clip((below - low_x) * scale - slack, 0, 0.5)
        high_key = s_groups + np.clip((above - low_x) * scale + slack, 0, 0.75)
    else:
        low_key, high_key = s_groups, s_groups + 0.75
    first = np.searchsorted(keys, low_key, side="left")
    return kept_index, first, np.searchsorted(keys, high_key, side="right") - first


def _attribute(boxes, groups, kept, visit, pending, threshold, by, iou) -> None:  # type: ignore[no-untyped-def]
    """Each suppressed box's suppressor: the first kept box of its group, in the kernel's visiting order,
    that overlaps it above ``threshold`` (the kernel suppresses a box at the first such kept box).
    Only same-group pairs within an x window are compared, in chunks of at most ``_PAIR_CHUNK`` pairs."""
    suppressed = np.flatnonzero(pending)
    kept_index, first, counts = _candidate_windows(boxes, groups, suppressed, np.flatnonzero(kept), threshold)
    cumulative = np.cumsum(counts)
    low = 0
    while low < len(suppressed):
        done = int(cumulative[low - 1]) if low else 0
        high = max(int(np.searchsorted(cumulative, done + _PAIR_CHUNK, side="right")), low + 1)
        rows_count = counts[low:high]
        rows = np.repeat(np.arange(high - low), rows_count)
        offsets = np.arange(len(rows)) - np.repeat(np.cumsum(rows_count) - rows_count, rows_count)
        columns = kept_index[np.repeat(first[low:high], rows_count) + offsets]
        targets = suppressed[low:high]
        overlaps = pair_iou(boxes[targets[rows]], boxes[columns])
        hits = np.flatnonzero(overlaps > threshold)
        # Per row, the hit the kernel visited first.
        hits = hits[np.lexsort((visit[columns[hits]], rows[hits]))]
        hit_rows = rows[hits]
        firsts = hits[np.r_[True, hit_rows[1:] != hit_rows[:-1]]] if len(hits) else hits
        by[targets[rows[firsts]]] = columns[firsts]
        iou[targets[rows[firsts]]] = overlaps[firsts]
        low = high
    for lost in suppressed[by[suppressed] < 0]:
        # Rounding at exactly the threshold: the best-overlapping kept box of the group explains the drop.
        candidates = np.flatnonzero(kept & (groups == groups[lost]))
        overlaps = iou_matrix(boxes[lost : lost + 1], boxes[candidates])[0]
        by[lost], iou[lost] = candidates[overlaps.argmax()], overlaps.max()


def box_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, groups: np.ndarray | None = None) -> Suppression:
    """Greedy NMS within each group (torchvision's kernel), with each suppressed box's suppressor and IoU.

    ``boxes`` (N, 4) xyxy, ``scores`` (N,), ``groups`` (N,) integer ids (None: one group). Groups may be many
    (images x sources x classes of a whole batch): they are packed into few kernel calls, and suppressors are
    found over same-group pairs only, in one vectorised pass.
    """
    count = len(boxes)
    by = np.full(count, -1, dtype=np.int64)
    iou = np.zeros(count, dtype=np.float64)
    if count < 2:
        return Suppression(by, iou)
    boxes = np.asarray(boxes, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    groups = np.zeros(count, dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    kept, visit = _kernel(boxes, scores, threshold, groups, by, iou)
    pending = ~kept & (by < 0)
    if pending.any():
        _attribute(boxes, groups, kept, visit, pending, threshold, by, iou)
    return Suppression(by, iou)


def greedy_nms(pairwise_iou: np.ndarray, scores: np.ndarray, threshold: float, allowed: np.ndarray) -> Suppression:
    """Greedy NMS over a precomputed IoU matrix; ``allowed[i, j]`` says whether box i may suppress box j.

    Used for mask IoU and for suppression across sources, where groups are pairwise rules.
    """
    count = len(scores)
    by = np.full(count, -1, dtype=np.int64)
    iou = np.zeros(count, dtype=np.float32)
    ranks = score_ranks(np.asarray(scores, dtype=np.float64))
    for i in np.argsort(ranks):
        if by[i] >= 0:
            continue
        hits = (pairwise_iou[i] > threshold) & allowed[i] & (by < 0) & (ranks > ranks[i])
        by[hits], iou[hits] = i, pairwise_iou[i, hits]
    return Suppression(by, iou)


@dataclass(slots=True)
class RegionColumns:
    """Regions (of one kind, from one or many images) as parallel arrays, like supervision's ``Detections``."""

    regions: list[Region]
    boxes: np.ndarray
    scores: np.ndarray
    images: np.ndarray
    sources: np.ndarray
    labels: np.ndarray

    @classmethod
    def of(
        cls, regions: list[Region], images: list[int] | None = None, priors: UnscoredPriors | None = None
    ) -> RegionColumns:
        """Columns of ``regions``; an unscored region ranks with its source's prior (``schemas/score_prior.py``)."""
        sources: dict[str, int] = {}
        labels: dict[str, int] = {}
        priors = priors or UnscoredPriors()
        return cls(
            regions,
            boxes_of(regions),
            np.asarray([effective_score(r.score, r.provenance.source, priors) for r in regions], dtype=np.float64),
            np.zeros(len(regions), dtype=np.int64) if images is None else np.asarray(images, dtype=np.int64),
            np.asarray([sources.setdefault(r.provenance.source, len(sources)) for r in regions], dtype=np.int64),
            np.asarray([labels.setdefault(r.text.strip().lower(), len(labels)) for r in regions], dtype=np.int64),
        )

    def take(self, index: np.ndarray) -> RegionColumns:
        regions = [self.regions[i] for i in index]
        return RegionColumns(
            regions, self.boxes[index], self.scores[index], self.images[index], self.sources[index], self.labels[index]
        )

    def groups(self, class_aware: bool) -> np.ndarray:
        """One id per (image, source) or, class-aware, per (image, source, label)."""
        ids = self.images * (int(self.sources.max(initial=0)) + 1) + self.sources
        return ids * (int(self.labels.max(initial=0)) + 1) + self.labels if class_aware else ids

    @property
    def masked(self) -> bool:
        return all(r.mask is not None for r in self.regions)

    def mask_iou(self) -> np.ndarray:
        return mask_iou_matrix([r.mask for r in self.regions], [r.mask for r in self.regions])  # type: ignore[misc]
