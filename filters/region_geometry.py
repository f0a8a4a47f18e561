"""Region geometry: clip to the image, then drop degenerate, tiny, near-whole-image and fragmented regions.

Defaults: a region must be at least 1 px on each side; boxes (other than OCR) below 0.01% of the
image (10x10 px of a 1000x1000 image) are noise at Florence-2's 1000-bin resolution, where such a box
spans one bin. A box covering nearly the whole image is right for an object (a close-up) but wrong
for an OCR word or line, a proposal, or a region caption, which would only repeat the image caption.
Masks below 0.01% of the image or in more than 8 pieces are SAM artefacts (SA-1B removes small
disconnected islands as post-processing), or GrabCut finding nothing: such a mask is dropped (a ``mask``
drop) and its region keeps its box, which the box rules judge. Clipping changes coordinates and is not a drop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from filters.base import Filter, Verdict, above, below, first_drop, mask_only
from schemas.bounds import Fraction, NonNegativeFloat, PositiveInt
from schemas.geometry import box_area, clip_box
from schemas.masks import count_fragments, decode_mask, mask_area
from schemas.records import GroundedRegion, ImageRecord, Phrase, Region


@dataclass(frozen=True)
class GeometryOptions:
    min_side_px: NonNegativeFloat = 1.0
    min_area_fraction: dict[str, Fraction] = field(
        default_factory=lambda: {"object": 1e-4, "proposal": 1e-4, "region_caption": 1e-4, "dense_caption": 1e-4}
    )
    max_area_fraction: dict[str, Fraction] = field(
        default_factory=lambda: {
            "proposal": 0.95,
            "ocr_line": 0.9,
            "ocr_word": 0.5,
            "region_caption": 0.95,
            "dense_caption": 0.95,
        }
    )
    min_mask_area_fraction: Fraction | None = 1e-4
    max_mask_fragments: PositiveInt | None = 8


def clip_points(points: tuple[float, ...] | None, width: int, height: int) -> tuple[float, ...] | None:
    """Clip interleaved (x, y) coordinates to the image."""
    if points is None:
        return None
    limits = (width, height)
    return tuple(min(max(v, 0.0), float(limits[i % 2])) for i, v in enumerate(points))


def clip_to_image(annotation: Region | GroundedRegion, width: int, height: int) -> None:
    annotation.bbox = clip_box(annotation.bbox, width, height)
    annotation.polygon = clip_points(annotation.polygon, width, height)
    if isinstance(annotation, Region):
        annotation.quad = clip_points(annotation.quad, width, height)


def shortest_side(box: tuple[float, float, float, float]) -> float:
    return min(box[2] - box[0], box[3] - box[1])


class GeometryFilter(Filter):
    """Clips boxes to the image and drops regions whose geometry is wrong for their kind."""

    backend: ClassVar[str] = "geometry"
    Options: ClassVar[type] = GeometryOptions
    targets: ClassVar[tuple[str, ...]] = ("regions", "phrases")

    def check(self, annotation: Region | Phrase, record: ImageRecord) -> Verdict | None:
        options: GeometryOptions = self.options
        image_area = float(record.width * record.height)
        if isinstance(annotation, Phrase):
            for region in annotation.regions:
                clip_to_image(region, record.width, record.height)
            sides = [shortest_side(r.bbox) for r in annotation.regions]
            return below("degenerate", max(sides, default=0.0), options.min_side_px)
        clip_to_image(annotation, record.width, record.height)
        area = box_area(annotation.bbox) / image_area
        verdict = first_drop(
            below("degenerate", shortest_side(annotation.bbox), options.min_side_px),
            below("tiny", area, options.min_area_fraction.get(annotation.kind)),
            above("near_whole_image", area, options.max_area_fraction.get(annotation.kind)),
        )
        if verdict is None and annotation.mask is not None:
            verdict = self.check_mask(annotation, image_area)
        return verdict

    def check_mask(self, region: Region, image_area: float) -> Verdict | None:
        """A mask-only verdict: the mask is empty, tiny or in pieces (the box was judged already)."""
        options: GeometryOptions = self.options
        verdict = below("tiny_mask", mask_area(region.mask) / image_area, options.min_mask_area_fraction)
        if verdict is None and options.max_mask_fragments is not None:
            fragments = count_fragments(decode_mask(region.mask))
            verdict = above("mask_fragments", fragments, options.max_mask_fragments)
        return mask_only(verdict)
