"""Names of the measured values kept in ``Region.metrics``: the stage that writes one and those that read it
import the same constant, so a reader can never look for a name no writer uses."""

from __future__ import annotations

# CLIP region text (``specialists/region_text_clip.py``): cosine similarity of a crop and its chosen text, and
# how many candidate texts were compared. Read by the region-text agreement filter.
CLIP_SIMILARITY = "clip_similarity"
CANDIDATES = "candidates"

# Segment Anything (``specialists/segment_sam.py``): the IoU head's estimate and the mask's stability under a
# shifted logit threshold (SA-1B's quality measures). Read by the confidence filter.
PREDICTED_IOU = "predicted_iou"
STABILITY_SCORE = "stability_score"

# Refinement (``refine/merge.py``): rounds whose model reproduced a region, and rounds that contradicted it.
REFINE_AGREEMENTS = "refine_agreements"
REFINE_DISAGREEMENTS = "refine_disagreements"

# Haar cascades (``specialists/detect_haar.py``): the final stage's level weight the score is squashed from.
HAAR_LEVEL_WEIGHT = "haar_level_weight"

# GrabCut (``specialists/segment_grabcut.py``): mask area over box area, share of the mask inside the box,
# and the iterations run.
GRABCUT_FILL = "grabcut_fill"
GRABCUT_INSIDE = "grabcut_inside"
GRABCUT_ITERATIONS = "grabcut_iterations"
