"""Non-maximum suppression over columnar arrays, recording which kept box suppressed each dropped one.

Within one source, boxes are suppressed class-aware (same label) for kinds whose labels are classes,
with torchvision's ``batched_nms``; across sources of the same kind (an ensemble of specialists),
suppression is class-agnostic and only between different sources. Where every region of a group has
a mask, IoU is the masks' IoU from their COCO RLEs (pycocotools). OCR quads are suppressed by their
boxes (``Region.bbox`` is the quad's enclosing box). A suppressed region's drop names the kept one
(``by``) and their IoU (``value``).

Default IoU thresholds: 0.5 for object boxes within a detector (torchvision's detection models and
DINO-style post-processing use 0.5), 0.7 for class-agnostic proposals, captions and ensembles
(SA-1B's box NMS), 0.5 for OCR (two readings of one line overlap almost fully; distinct lines barely).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from torchvision.ops import batched_nms

from filters.base import Annotation, Filter, Verdict
from schemas.masks import mask_iou_matrix
from schemas.records import ImageRecord, Region

# Above this many IoU entries, suppressors are found group by group to bound memory.
_DENSE_LIMIT = 4_000_000


@dataclass(frozen=True, slots=True)
class Suppression:
    """Per input box: ``by`` is the index of the kept box that suppressed it (-1 if kept), ``iou`` their IoU."""

    by: np.ndarray
    iou: np.ndarray

    @property
    def kept(self) -> np.ndarray:
        return self.by < 0


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes."""
    area_a = (a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0)
    area_b = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    width = (np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])).clip(0)
    height = (np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])).clip(0)
    inter = width * height
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def score_ranks(scores: np.ndarray) -> np.ndarray:
    """Position of each box in descending score order (ties keep input order)."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[order] = np.arange(len(scores))
    return ranks


def _first_suppressor(iou: np.ndarray, suppressed_ranks: np.ndarray, kept_ranks: np.ndarray, threshold: float):
    """For each suppressed row: the highest-ranked kept column with IoU above ``threshold`` (columns by rank)."""
    hits = (iou > threshold) & (kept_ranks[None, :] < suppressed_ranks[:, None])
    first = hits.argmax(axis=1)
    # Score ties may order boxes differently from torchvision; the best-overlapping kept box explains those.
    missing = ~hits[np.arange(len(first)), first]
    first[missing] = iou[missing].argmax(axis=1)
    return first, iou[np.arange(len(first)), first]


def box_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, groups: np.ndarray | None = None) -> Suppression:
    """Greedy NMS within each group (torchvision ``batched_nms``), with each suppressed box's suppressor.

    ``boxes`` (N, 4) xyxy, ``scores`` (N,), ``groups`` (N,) integer ids (None: one group).
    """
    count = len(boxes)
    by = np.full(count, -1, dtype=np.int64)
    iou = np.zeros(count, dtype=np.float32)
    if count == 0:
        return Suppression(by, iou)
    boxes = np.ascontiguousarray(boxes, dtype=np.float32)
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    groups = np.zeros(count, dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    keep = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(groups), threshold).numpy()
    if len(keep) == count:
        return Suppression(by, iou)
    kept_mask = np.zeros(count, dtype=bool)
    kept_mask[keep] = True
    ranks = score_ranks(scores)
    kept = np.flatnonzero(kept_mask)
    kept = kept[np.argsort(ranks[kept])]
    suppressed = np.flatnonzero(~kept_mask)
    if len(suppressed) * len(kept) <= _DENSE_LIMIT:
        # Shift each group far apart (torchvision's coordinate trick) so one matrix covers all groups.
        shifted = boxes + (groups * (float(boxes.max()) + 1.0)).astype(np.float32)[:, None]
        pairs = iou_matrix(shifted[suppressed], shifted[kept])
        first, overlap = _first_suppressor(pairs, ranks[suppressed], ranks[kept], threshold)
        by[suppressed], iou[suppressed] = kept[first], overlap
        return Suppression(by, iou)
    for group in np.unique(groups[suppressed]):
        rows = suppressed[groups[suppressed] == group]
        columns = kept[groups[kept] == group]
        step = max(1, _DENSE_LIMIT // max(len(columns), 1))
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            pairs = iou_matrix(boxes[chunk], boxes[columns])
            first, overlap = _first_suppressor(pairs, ranks[chunk], ranks[columns], threshold)
            by[chunk], iou[chunk] = columns[first], overlap
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


@dataclass(frozen=True)
class NmsOptions:
    """IoU thresholds per kind (a kind not listed is not suppressed); ``class_aware_kinds`` suppress
    only regions with the same label within a source; ``cross_source_iou`` per kind suppresses across
    sources regardless of label; ``use_masks`` compares masks where every region of a group has one."""

    iou: dict[str, float] = field(
        default_factory=lambda: {
            "object": 0.5,
            "proposal": 0.7,
            "ocr_line": 0.5,
            "ocr_word": 0.5,
            "region_caption": 0.7,
            "dense_caption": 0.7,
        }
    )
    class_aware_kinds: tuple[str, ...] = ("object",)
    cross_source_iou: dict[str, float] = field(
        default_factory=lambda: {
            "object": 0.7,
            "proposal": 0.7,
            "ocr_line": 0.5,
            "ocr_word": 0.5,
            "region_caption": 0.7,
            "dense_caption": 0.7,
        }
    )
    use_masks: bool = True


@dataclass(slots=True)
class RegionColumns:
    """One kind's regions of one image as parallel arrays."""

    regions: list[Region]
    boxes: np.ndarray
    scores: np.ndarray
    sources: np.ndarray
    labels: np.ndarray

    @classmethod
    def of(cls, regions: list[Region]) -> RegionColumns:
        # Unscored regions (human labels merged in) rank above every scored one.
        scores = [np.inf if r.score is None else r.score for r in regions]
        _, sources = np.unique([r.provenance.source for r in regions], return_inverse=True)
        _, labels = np.unique([r.text.strip().lower() for r in regions], return_inverse=True)
        return cls(
            regions,
            np.asarray([r.bbox for r in regions], dtype=np.float32).reshape(-1, 4),
            np.asarray(scores, dtype=np.float32),
            sources.astype(np.int64),
            labels.astype(np.int64),
        )

    def take(self, index: np.ndarray) -> RegionColumns:
        regions = [self.regions[i] for i in index]
        return RegionColumns(regions, self.boxes[index], self.scores[index], self.sources[index], self.labels[index])

    @property
    def masked(self) -> bool:
        return all(r.mask is not None for r in self.regions)

    def mask_iou(self) -> np.ndarray:
        return mask_iou_matrix([r.mask for r in self.regions], [r.mask for r in self.regions])  # type: ignore[misc]


class NmsFilter(Filter):
    """Suppresses redundant regions per kind: within each source, then across sources."""

    backend: ClassVar[str] = "nms"
    Options: ClassVar[type] = NmsOptions

    def decide(self, record: ImageRecord) -> Iterator[tuple[Annotation, Verdict]]:
        options: NmsOptions = self.options
        by_kind: dict[str, list[Region]] = {}
        for region in record.regions:
            by_kind.setdefault(region.kind, []).append(region)
        for kind, regions in by_kind.items():
            if kind not in options.iou or len(regions) < 2:
                continue
            columns = RegionColumns.of(regions)
            groups = columns.sources * (columns.labels.max() + 1) + columns.labels
            if kind not in options.class_aware_kinds:
                groups = columns.sources
            survivors = yield from self._suppress(columns, groups, options.iou[kind], "nms", same_group=True)
            threshold = options.cross_source_iou.get(kind)
            if threshold is not None and len(np.unique(survivors.sources)) > 1:
                yield from self._suppress(survivors, survivors.sources, threshold, "nms_cross_source", same_group=False)

    def _suppress(self, columns: RegionColumns, groups: np.ndarray, threshold: float, rule: str, same_group: bool):
        """Yield drops for ``columns``; return the surviving columns. Box NMS within groups, else pairwise rules."""
        use_masks = self.options.use_masks and columns.masked
        if same_group and not use_masks:
            result = box_nms(columns.boxes, columns.scores, threshold, groups)
        else:
            pairwise = columns.mask_iou() if use_masks else iou_matrix(columns.boxes, columns.boxes)
            allowed = (groups[:, None] == groups[None, :]) if same_group else (groups[:, None] != groups[None, :])
            result = greedy_nms(pairwise, columns.scores, threshold, allowed)
        rule = f"mask_{rule}" if use_masks else rule
        for i in np.flatnonzero(~result.kept):
            suppressor = columns.regions[result.by[i]].id
            yield columns.regions[i], Verdict(rule, float(result.iou[i]), threshold, by=suppressor)
        return columns.take(np.flatnonzero(result.kept))
