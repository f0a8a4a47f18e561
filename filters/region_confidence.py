"""Confidence thresholds per source and kind, SAM's mask quality metrics, and grounding scores.

Defaults: 0.3 for object boxes (Grounding DINO's demo box threshold is 0.35 and DINO-style scores
are sigmoid probabilities; 0.3 keeps a little more recall for NMS to resolve), 0.5 for OCR (the
rapidocr default text score), SA-1B's predicted IoU >= 0.88 and stability >= 0.95 for masks that
carry those metrics, and 0.3 for a grounded phrase (Grounding DINO's demo threshold, 0.35, less a
margin). A source-specific threshold (by stage name) replaces the kind's.

A region without a score (Florence-2's boxes) is judged by its source's prior (``unscored``, see
``schemas/score_prior.py``), not let through unjudged. SAM's measures judge the mask, not the box: a
region whose mask fails them loses the mask (a ``mask`` drop) and keeps its box, which its own score
judges; a region that carries the measures without a mask (a segmenter's own proposal) is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from filters.base import Filter, Verdict, below, first_drop, mask_only
from schemas.bounds import Fraction
from schemas.metrics import PREDICTED_IOU, STABILITY_SCORE
from schemas.records import ImageRecord, Phrase, Region
from schemas.score_prior import UnscoredPriors, effective_score


@dataclass(frozen=True)
class ConfidenceOptions:
    min_score_by_kind: dict[str, Fraction] = field(
        default_factory=lambda: {"object": 0.3, "ocr_line": 0.5, "ocr_word": 0.5}
    )
    min_score_by_source: dict[str, Fraction] = field(default_factory=dict)
    min_metrics: dict[str, float] = field(default_factory=lambda: {PREDICTED_IOU: 0.88, STABILITY_SCORE: 0.95})
    min_phrase_score: Fraction | None = 0.3
    unscored: UnscoredPriors = field(default_factory=UnscoredPriors)


class ConfidenceFilter(Filter):
    """Drops regions and phrases whose confidence, or a quality metric they carry, is below its threshold."""

    backend: ClassVar[str] = "confidence"
    Options: ClassVar[type] = ConfidenceOptions
    targets: ClassVar[tuple[str, ...]] = ("regions", "phrases")

    def check(self, annotation: Region | Phrase, record: ImageRecord) -> Verdict | None:
        options: ConfidenceOptions = self.options
        if isinstance(annotation, Phrase):
            scores = [r.score for r in annotation.regions if r.score is not None]
            score = annotation.score if annotation.score is not None else max(scores, default=None)
            return below("min_phrase_score", score, options.min_phrase_score)
        minimum = options.min_score_by_source.get(
            annotation.provenance.source, options.min_score_by_kind.get(annotation.kind)
        )
        score = effective_score(annotation.score, annotation.provenance.source, options.unscored)
        quality = first_drop(
            *(below(f"min_{name}", annotation.metrics.get(name), m) for name, m in options.min_metrics.items())
        )
        if annotation.mask is not None:
            return below("min_score", score, minimum) or mask_only(quality)
        return first_drop(below("min_score", score, minimum), quality)
