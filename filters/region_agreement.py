"""Region-text agreement: threshold the image-text similarity an image-text model wrote per region.

A scoring specialist writes the similarity of each region's crop and its text into
``Region.metrics[metric]`` (the default metric is :data:`schemas.metrics.CLIP_SIMILARITY`, which the CLIP
region-text specialist writes); this filter only thresholds it, so thresholds can change without
re-scoring. Default 0.2 (CLIP ViT-B/32 cosine): LAION filtered whole image-caption pairs at 0.28-0.3,
and a crop with a short label scores lower than an image with its caption, so 0.2 removes clear
mismatches only. Regions without the metric are kept (nothing scored them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from filters.base import Filter, Verdict, below
from schemas.bounds import Fraction
from schemas.metrics import CLIP_SIMILARITY
from schemas.records import ImageRecord, Region


@dataclass(frozen=True)
class AgreementOptions:
    metric: str = CLIP_SIMILARITY
    min_score_by_kind: dict[str, Fraction] = field(
        default_factory=lambda: {"object": 0.2, "region_caption": 0.2, "dense_caption": 0.2}
    )


class AgreementFilter(Filter):
    """Drops regions whose crop and text disagree according to the configured similarity metric."""

    backend: ClassVar[str] = "region_text_agreement"
    Options: ClassVar[type] = AgreementOptions
    targets: ClassVar[tuple[str, ...]] = ("regions",)

    def check(self, annotation: Region, record: ImageRecord) -> Verdict | None:
        minimum = self.options.min_score_by_kind.get(annotation.kind)
        return below(f"min_{self.options.metric}", annotation.metrics.get(self.options.metric), minimum)
