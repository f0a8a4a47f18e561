"""The tiny profile: every model-backed specialist on a tiny checkpoint, run in order over sample images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.config.profile import parse_config
from schemas.masks import decode_mask
from schemas.records import ImageRecord, Provenance, Region, Text
from schemas.validation import validate_record
from tests.support.tiny_models.chain import build_specialists, run_chain
from tests.support.tiny_models.profile import tiny_profile

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "images"


@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> dict:
    return tiny_profile(tmp_path_factory.mktemp("tiny-models"))


def test_profile_validates_and_every_weight_is_found(profile) -> None:
    config = parse_config(profile, profile="tiny")
    backends = {s.backend for s in config.specialists}
    assert {"blip", "florence2", "clip_region_text", "llm_aggregator", "rapidocr", "haar", "grabcut"} <= backends
    assert {"ultralytics", "hf_detection", "hf_grounding", "grounding_dino", "sam_hf", "sam_ultralytics"} <= backends
    checks = [s.check_weights() for s in build_specialists(config)]
    assert [c.specialist for c in checks if not c.found] == []


def test_chain_writes_every_annotation_type_with_provenance_of_its_specialist(profile) -> None:
    config = parse_config(profile, profile="tiny")
    specialists = build_specialists(config)
    images = [np.asarray(Image.open(SAMPLES / n).convert("RGB").resize((96, 64))) for n in ("bus.jpg", "chelsea.jpg")]
    records = [ImageRecord(f"{i}" * 64, f"mem://{i}", 96, 64, "jpg") for i in range(len(images))]
    # Random-init detectors may find nothing: one known object box per image keeps region text and masks exercised.
    for record in records:
        record.regions.append(Region("object", (10, 8, 70, 60), "bus", Provenance("ground_truth", "manual", 0)))
        # Random-init captioners write no noun phrases to ground: a known caption gives grounding phrases.
        record.texts.append(Text("brief", "a red bus on the road", Provenance("ground_truth", "manual", 0)))
    times = run_chain(specialists, records, images)
    assert list(times) == [s.name for s in config.specialists]
    for record in records:
        validate_record(record)
        sources = {a.provenance.source for a in record.texts + record.regions + record.phrases}
        # The tiny random-init Florence-2 ends every answer at once (it ran, as `times` shows): no rows required of it.
        assert {"blip", "region_text", "aggregator"} <= sources
        granularities = {t.granularity for t in record.texts if t.provenance.source == "aggregator"}
        assert granularities == {"detailed", "more_detailed"}
        assert any(r.kind == "region_caption" and r.provenance.source == "region_text" for r in record.regions)
        (given,) = [r for r in record.regions if r.provenance.source == "ground_truth"]
        assert given.mask is not None and tuple(given.mask.size) == (64, 96)
        assert sum(r.kind == "object" and r.provenance.source == "yolo" for r in record.regions) == 3
        assert sum(r.kind == "object" and r.provenance.source == "detr" for r in record.regions) == 3
        phrases = [p for p in record.phrases if p.provenance.source == "grounding"]
        assert {p.phrase for p in phrases} >= {"a red bus", "the road"}
        assert all(g.mask is not None and tuple(g.mask.size) == (64, 96) for p in phrases for g in p.regions)
        # BLIP's random caption may give phrases too: the known caption's are exactly its two noun chunks.
        (caption,) = [t for t in record.texts if t.provenance.source == "ground_truth"]
        dino = [p for p in record.phrases if p.provenance.source == "grounding_dino"]
        assert [(p.phrase, p.start, p.end) for p in dino if p.text_id == caption.id] == [
            ("a red bus", 0, 9),
            ("the road", 13, 21),
        ]
        assert all(1 <= len(p.regions) <= 2 for p in dino)
        assert all(g.mask is not None and tuple(g.mask.size) == (64, 96) for p in dino for g in p.regions)
        # GrabCut took the known box; ultralytics SAM the detectors' boxes, with SAM's quality metrics.
        assert "grabcut_fill" in given.metrics
        detected = [r for r in record.regions if r.provenance.source in ("yolo", "detr")]
        assert all(decode_mask(r.mask).shape == (64, 96) for r in detected)
        assert all({"predicted_iou", "stability_score"} <= set(r.metrics) for r in detected)
