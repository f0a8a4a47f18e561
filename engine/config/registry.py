"""Backend names used in profiles, mapped to the stage classes that implement them.

Entries are import paths so that choosing a backend imports only what it needs.
"""

from __future__ import annotations

import importlib
from typing import Any

from schemas.stage import StageKind

# The profile sections, and the ``kind`` each stage class declares (schemas/stage.py).
SPECIALISTS: StageKind = "specialists"
FILTERS: StageKind = "filters"

SPECIALIST_BACKENDS: dict[str, str] = {
    "rapidocr": "specialists.ocr_rapid:RapidOcr",
    "florence2": "specialists.florence2:Florence2",
    "haar": "specialists.detect_haar:HaarDetector",
    "grabcut": "specialists.segment_grabcut:GrabCutSegmenter",
    "blip": "specialists.caption_blip:ImageCaptioner",
    "clip_region_text": "specialists.region_text_clip:ClipRegionText",
    "llm_aggregator": "specialists.aggregator_llm:LlmAggregator",
    "ultralytics": "specialists.detect_ultralytics:UltralyticsDetector",
    "sam_hf": "specialists.segment_sam_hf:SamSegmenter",
    "sam_ultralytics": "specialists.segment_sam_ultralytics:UltralyticsSamSegmenter",
    "hf_grounding": "specialists.grounding_hf:OwlGrounding",
    "grounding_dino": "specialists.grounding_dino:GroundingDino",
    "hf_detection": "specialists.detect_hf:HfDetector",
    # Existing labels from a file (``fld-engine run --annotations``): an ingest concern, so it lives in engine/.
    "import": "engine.ingest.imports.stage:ImportedAnnotations",
}

FILTER_BACKENDS: dict[str, str] = {
    "spacy_text": "filters.text_rules:TextFilter",
    "confidence": "filters.region_confidence:ConfidenceFilter",
    "geometry": "filters.region_geometry:GeometryFilter",
    "region_text_agreement": "filters.region_agreement:AgreementFilter",
    "nms": "filters.nms:NmsFilter",
    "blacklist": "filters.blacklist_filter:BlacklistFilter",
}


def backends(kind: StageKind) -> dict[str, str]:
    """The backends registered for ``kind`` (``specialists`` or ``filters``)."""
    return {SPECIALISTS: SPECIALIST_BACKENDS, FILTERS: FILTER_BACKENDS}[kind]


def stage_class(kind: StageKind, backend: str) -> Any:
    """The class registered for ``backend`` among the stages of ``kind``."""
    table = backends(kind)
    if backend not in table:
        raise KeyError(backend)
    module, _, name = table[backend].partition(":")
    return getattr(importlib.import_module(module), name)
