"""Backend names used in profiles, mapped to the stage classes that implement them.

Entries are import paths so that choosing a backend imports only what it needs. A profile may also name
a class of its own by import path, ``module:Class`` (``engine/config/custom_stages.py``).
"""

from __future__ import annotations

import importlib
from typing import Any

from engine.config.custom_stages import custom_stage_class, is_custom
from engine.config.typed_config import ConfigError
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
    """The class registered for ``backend`` among the stages of ``kind``, or the ``module:Class`` it names."""
    table = backends(kind)
    if backend not in table:
        if is_custom(backend):
            cls = custom_stage_class(backend)
            if cls.kind != kind:
                raise ConfigError(f"{backend!r} is one of the {cls.kind}, not of the {kind}")
            return cls
        raise KeyError(backend)
    module, _, name = table[backend].partition(":")
    return getattr(importlib.import_module(module), name)


def kind_of(backend: Any) -> StageKind | None:
    """The family a backend belongs to (a registered name, or a ``module:Class`` by its class); None if unknown."""
    if is_custom(backend) and backend not in SPECIALIST_BACKENDS and backend not in FILTER_BACKENDS:
        return custom_stage_class(backend).kind
    kinds = [kind for kind in (SPECIALISTS, FILTERS) if backend in backends(kind)]
    return kinds[0] if len(kinds) == 1 else None
