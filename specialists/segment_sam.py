"""What every Segment Anything backend shares: which annotations are box prompts, and writing masks onto them.

A backend (``segment_sam_hf``, ``segment_sam_ultralytics``) only turns boxes into mask logits at the image
size and predicted IoUs; :func:`write_masks` then gives each annotation its ``mask`` (COCO RLE),
``polygon`` and, for a :class:`Region`, the two SA-1B quality measures as metrics: ``predicted_iou`` (the
model's IoU head) and ``stability_score`` (see :func:`stability_score`).
"""

from __future__ import annotations

from typing import Any

from schemas.masks import encode_mask, mask_to_polygon
from schemas.metrics import PREDICTED_IOU, STABILITY_SCORE
from schemas.pixel_limits import PixelLimits
from schemas.records import GroundedRegion, ImageRecord, Region

# Both SAM stages upscale mask logits to the image size (a few boxes x H x W floats at once), and shrink the
# long side to the model's 1024-pixel input: a thinner image than 256:1 leaves its short side under 4 pixels.
SAM_PIXEL_LIMITS = PixelLimits(max_pixels=16_000_000, max_aspect_ratio=256)


def box_prompts(
    record: ImageRecord, kinds: tuple[str, ...], phrases: bool, max_boxes: int
) -> list[Region | GroundedRegion]:
    """The annotations to segment in one image: regions of ``kinds`` without a mask, then (with ``phrases``)
    grounded phrase regions without one; boxes with no area are skipped, and at most ``max_boxes`` kept."""
    targets: list[Region | GroundedRegion] = [r for r in record.regions if r.kind in kinds and r.mask is None]
    if phrases:
        targets += [g for p in record.phrases for g in p.regions if g.mask is None]
    return [t for t in targets if t.bbox[2] > t.bbox[0] and t.bbox[3] > t.bbox[1]][:max_boxes]


def stability_score(logits: Any, offset: float = 1.0, threshold: float = 0.0) -> Any:
    """IoU between the masks at ``threshold + offset`` and ``threshold - offset`` over the last two dims.

    The higher mask contains the lower one, so the IoU is a ratio of pixel counts (1.0 for an empty mask,
    as in segment-anything's ``calculate_stability_score``, which divides 0 by 0 there).
    """
    high = (logits > threshold + offset).flatten(-2).sum(-1).float()
    low = (logits > threshold - offset).flatten(-2).sum(-1).float()
    return (high / low.clamp(min=1)).where(low > 0, low.new_ones(()))


def write_masks(
    targets: list[Region | GroundedRegion],
    logits: Any,
    predicted_iou: Any,
    stability_offset: float = 1.0,
    threshold: float = 0.0,
) -> None:
    """Give each target its mask from ``logits`` (targets x H x W at the image size, on the CPU) thresholded
    at ``threshold``, its polygon and, for a :class:`Region`, ``predicted_iou`` and ``stability_score``
    metrics (a :class:`GroundedRegion` has no metrics field and keeps only its mask and polygon)."""
    stability = stability_score(logits, stability_offset, threshold)
    for target, mask_logits, predicted, stable in zip(targets, logits, predicted_iou, stability, strict=True):
        binary = (mask_logits > threshold).numpy()
        target.mask = encode_mask(binary)
        target.polygon = mask_to_polygon(binary)
        if isinstance(target, Region):
            target.metrics[PREDICTED_IOU] = float(predicted)
            target.metrics[STABILITY_SCORE] = float(stable)
