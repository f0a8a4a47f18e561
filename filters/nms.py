"""The NMS filter: which regions suppress which, per kind and source, each drop naming the kept region.

The kernel (torchvision's, grouped, with each suppressed box's suppressor), box IoU and the columnar view
of regions live in ``schemas/boxes.py``; this module is the policy.

Within one source, boxes are suppressed class-aware (same label) for kinds whose labels are classes,
with torchvision's NMS kernel grouped the way its ``batched_nms`` groups; across sources of the same
kind (an ensemble of specialists), suppression is class-agnostic and only between different sources.
Where every region of a group has a mask, IoU is the masks' IoU from their COCO RLEs (pycocotools).
OCR quads are suppressed by their boxes (``Region.bbox`` is the quad's enclosing box). A suppressed
region's drop names the kept one (``by``) and their IoU (``value``). Regions rank by score; a region without
one (Florence-2's) ranks with its source's prior (``unscored``, ``schemas/score_prior.py``: 0.5 by default),
so a detector box scored 0.95 suppresses an unscored box of the same object, not the reverse.

Default IoU thresholds: 0.5 for object boxes within a detector (torchvision's detection models and
DINO-style post-processing use 0.5), 0.7 for class-agnostic proposals, captions and ensembles
(SA-1B's box NMS), 0.5 for OCR (two readings of one line overlap almost fully; distinct lines barely).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from filters.base import Annotation, Filter, Verdict
from schemas.bounds import Fraction
from schemas.boxes import RegionColumns, Suppression, box_nms, greedy_nms, iou_matrix
from schemas.records import ImageRecord
from schemas.score_prior import UnscoredPriors


@dataclass(frozen=True)
class NmsOptions:
    """IoU thresholds per kind (a kind not listed is not suppressed); ``class_aware_kinds`` suppress
    only regions with the same label within a source; ``cross_source_iou`` per kind suppresses across
    sources regardless of label; ``use_masks`` compares masks where every region of a group has one;
    ``unscored``: the score an unscored region ranks with, per source."""

    iou: dict[str, Fraction] = field(
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
    cross_source_iou: dict[str, Fraction] = field(
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
    unscored: UnscoredPriors = field(default_factory=UnscoredPriors)


Drops = list[tuple[Annotation, Verdict]]


class NmsFilter(Filter):
    """Suppresses redundant regions per kind: within each source, then across sources.

    Box NMS runs once per kind over the whole batch of images (the images are groups), so the cost per
    image is a few array operations; mask NMS and suppression across sources run per image, where needed.
    """

    backend: ClassVar[str] = "nms"
    Options: ClassVar[type] = NmsOptions

    def measure(self, records: list[ImageRecord]) -> None:
        options: NmsOptions = self.options
        self._drops: dict[int, Drops] = {id(record): [] for record in records}
        for kind, threshold in options.iou.items():
            regions, images = [], []
            for i, record in enumerate(records):
                of_kind = [r for r in record.regions if r.kind == kind]
                if len(of_kind) > 1:
                    regions.extend(of_kind)
                    images.extend([i] * len(of_kind))
            if not regions:
                continue
            columns = RegionColumns.of(regions, images, options.unscored)
            class_aware = kind in options.class_aware_kinds
            masked = self._masked_images(columns) if options.use_masks else np.zeros(len(records), dtype=bool)
            by_boxes = np.flatnonzero(~masked[columns.images])
            survivors = [self._record(records, self._box_nms(columns.take(by_boxes), class_aware, threshold))]
            for image in np.flatnonzero(masked):
                part = columns.take(np.flatnonzero(columns.images == image))
                survivors.append(
                    self._record(records, self._pairwise(part, part.groups(class_aware), threshold, "nms"))
                )
            cross = options.cross_source_iou.get(kind)
            if cross is None:
                continue
            for part in survivors:
                for image in np.unique(part.images):
                    in_image = part.take(np.flatnonzero(part.images == image))
                    if len(np.unique(in_image.sources)) > 1:
                        self._record(
                            records, self._pairwise(in_image, in_image.sources, cross, "nms_cross_source", True)
                        )

    def decide(self, record: ImageRecord) -> Iterator[tuple[Annotation, Verdict]]:
        yield from self._drops.pop(id(record), [])

    @staticmethod
    def _masked_images(columns: RegionColumns) -> np.ndarray:
        """Per image: whether every region of this kind in it has a mask."""
        has_mask = np.asarray([r.mask is not None for r in columns.regions])
        count = int(columns.images.max()) + 1
        return np.bincount(columns.images, minlength=count) == np.bincount(
            columns.images, weights=has_mask, minlength=count
        )

    @staticmethod
    def _box_nms(
        columns: RegionColumns, class_aware: bool, threshold: float
    ) -> tuple[RegionColumns, Suppression, str, float]:
        result = box_nms(columns.boxes, columns.scores, threshold, columns.groups(class_aware))
        return columns, result, "nms", threshold

    def _pairwise(
        self, columns: RegionColumns, groups: np.ndarray, threshold: float, rule: str, across: bool = False
    ) -> tuple[RegionColumns, Suppression, str, float]:
        """Greedy NMS over a pairwise IoU matrix (masks, or boxes across sources) for one image."""
        use_masks = self.options.use_masks and columns.masked
        pairwise = columns.mask_iou() if use_masks else iou_matrix(columns.boxes, columns.boxes)
        allowed = (groups[:, None] != groups[None, :]) if across else (groups[:, None] == groups[None, :])
        return (
            columns,
            greedy_nms(pairwise, columns.scores, threshold, allowed),
            f"mask_{rule}" if use_masks else rule,
            threshold,
        )

    def _record(
        self, records: list[ImageRecord], outcome: tuple[RegionColumns, Suppression, str, float]
    ) -> RegionColumns:
        """Queue the drops of ``outcome`` on their records; return the surviving columns."""
        columns, result, rule, threshold = outcome
        for i in np.flatnonzero(~result.kept):
            verdict = Verdict(rule, float(result.iou[i]), threshold, by=columns.regions[result.by[i]].id)
            self._drops[id(records[columns.images[i]])].append((columns.regions[i], verdict))
        return columns.take(np.flatnonzero(result.kept))
