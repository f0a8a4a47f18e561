"""Score-weighted fusion of boxes that agree on one object, by ``ensemble-boxes``' weighted boxes fusion.

Weighted boxes fusion (Solovyev et al., 2021) averages the coordinates of overlapping boxes weighted by their
scores, where NMS would keep one box and throw the others' evidence away. The merge fuses an annotation with
the predictions that confirm it, and a new prediction with the earlier votes for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Box = tuple[float, float, float, float]


def fuse_boxes(
    boxes: Sequence[Sequence[float]], scores: Sequence[float], width: int, height: int, iou_threshold: float
) -> Box:
    """One box from ``boxes`` (pixels, all of one object), each weighted by its score.

    Each box is its own "model" for ``weighted_boxes_fusion``, so no box is dropped for sharing a model with
    another; boxes the fusion would not cluster with the best-scored one (IoU below ``iou_threshold``) are
    left out. A single box comes back as it is."""
    if not boxes:
        raise ValueError("fuse_boxes needs at least one box")
    if len(boxes) == 1:
        return tuple(float(v) for v in boxes[0])  # type: ignore[return-value]
    from ensemble_boxes import weighted_boxes_fusion

    scale = np.array([width, height, width, height], dtype=np.float64)
    normalised = np.clip(np.asarray(boxes, dtype=np.float64) / scale, 0.0, 1.0)
    fused, fused_scores, _ = weighted_boxes_fusion(
        [[box.tolist()] for box in normalised],
        [[max(float(s), 1e-6)] for s in scores],
        [[0] for _ in boxes],
        iou_thr=iou_threshold,
        skip_box_thr=0.0,
    )
    if len(fused) == 0:  # every box was degenerate once clipped to the image
        return tuple(float(v) for v in boxes[int(np.argmax(scores))])  # type: ignore[return-value]
    best = fused[int(np.argmax(fused_scores))] * scale
    return tuple(round(float(v), 3) for v in best)  # type: ignore[return-value]
