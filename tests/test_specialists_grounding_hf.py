"""OWLv2 phrase grounding: noun phrases of each text (blacklist applied) grounded to boxes with their spans."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.records import ImageRecord, Provenance, Text, TextAnalysis
from schemas.validation import validate_record
from specialists.base import WeightsNotFound
from specialists.grounding_hf import GroundingOptions, OwlGrounding, ground_boxes

CAPTIONER = Provenance("captioner", "tiny", 0)
CAPTION = "A cat sitting on a red sofa next to the window in the image."


@pytest.fixture(scope="module")
def owl_dir(tmp_path_factory) -> str:
    from tests.tiny_models.owlv2 import build_tiny_owlv2

    return str(build_tiny_owlv2(tmp_path_factory.mktemp("tiny-owlv2")))


@pytest.fixture(scope="module")
def grounding(owl_dir) -> OwlGrounding:
    specialist = OwlGrounding("grounding", GroundingOptions(model=owl_dir, min_score=0.0, max_regions=2))
    specialist.setup()
    return specialist


def _record(*texts: Text, width: int = 80, height: int = 48) -> ImageRecord:
    return ImageRecord("f" * 64, "mem://f", width, height, "png", texts=list(texts))


def _image(height: int = 48, width: int = 80, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


def test_ground_boxes_thresholds_suppresses_overlaps_and_keeps_the_best_first() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], dtype=float)
    scores = np.array([0.6, 0.9, 0.5, 0.05])
    assert ground_boxes(scores, boxes, min_score=0.1, nms_iou=0.5, max_regions=4) == [
        ((1.0, 1.0, 10.0, 10.0), 0.9),
        ((20.0, 20.0, 30.0, 30.0), 0.5),
    ]
    assert ground_boxes(scores, boxes, min_score=0.1, nms_iou=0.5, max_regions=1) == [((1.0, 1.0, 10.0, 10.0), 0.9)]
    assert ground_boxes(scores, boxes, min_score=0.95, nms_iou=0.5, max_regions=4) == []


def test_phrases_are_noun_chunks_with_spans_and_the_blacklist_removes_the_image(grounding) -> None:
    record = _record(Text("brief", CAPTION, CAPTIONER))
    spans = grounding.phrase_spans(record)
    assert [(s.phrase, s.start, s.end) for s in spans] == [
        ("A cat", 0, 5),
        ("a red sofa", 17, 27),
        ("the window", 36, 46),
    ]


def test_the_text_filters_noun_phrase_spans_are_used_when_present(grounding) -> None:
    image = CAPTION.index("the image")
    analysed = Text("brief", CAPTION, CAPTIONER, analysis=TextAnalysis(noun_phrases=[(2, 5), (image, image + 9)]))
    spans = grounding.phrase_spans(_record(analysed))
    assert [s.phrase for s in spans] == ["cat"]  # "the image" is blacklisted


def test_only_configured_granularities_are_grounded(owl_dir) -> None:
    brief_only = OwlGrounding("g", GroundingOptions(model=owl_dir, granularities=("brief",)))
    brief_only.setup()
    record = _record(Text("detailed", "A woman rides a bicycle.", CAPTIONER))
    assert brief_only.phrase_spans(record) == []


def test_grounded_phrases_are_schema_valid_triplets_with_boxes_inside_each_image(grounding) -> None:
    wide = _record(Text("brief", CAPTION, CAPTIONER))
    tall = _record(Text("detailed", "A woman rides a bicycle.", CAPTIONER), width=30, height=60)
    silent = _record()
    grounding.process([wide, silent, tall], [_image(), _image(20, 20), _image(60, 30)])
    for record in (wide, silent, tall):
        validate_record(record)
    assert [p.phrase for p in wide.phrases] == ["A cat", "a red sofa", "the window"]
    assert [p.phrase for p in tall.phrases] == ["A woman", "a bicycle"] and silent.phrases == []
    for record in (wide, tall):
        for phrase in record.phrases:
            text = next(t for t in record.texts if t.id == phrase.text_id)
            assert text.text[phrase.start : phrase.end] == phrase.phrase
            assert 1 <= len(phrase.regions) <= 2
            assert phrase.score == max(r.score for r in phrase.regions)
            for x0, y0, x1, y1 in (r.bbox for r in phrase.regions):
                assert 0 <= x0 < x1 <= record.width and 0 <= y0 < y1 <= record.height
            assert phrase.provenance.model == grounding.model_id


def test_a_phrase_without_a_box_above_min_score_is_not_written(owl_dir) -> None:
    strict = OwlGrounding("g", GroundingOptions(model=owl_dir, min_score=1.1))
    record = _record(Text("brief", CAPTION, CAPTIONER))
    strict.process([record], [_image()])
    assert record.phrases == []


def test_missing_grounding_weights_name_every_place_looked_in(tmp_path) -> None:
    with pytest.raises(WeightsNotFound, match=r"grounding \(hf_grounding\): weights for .*no-owl.* not found"):
        OwlGrounding("grounding", GroundingOptions(model=str(tmp_path / "no-owl"))).setup()
