"""OWLv2 phrase grounding: noun phrases of each text (blacklist applied) grounded to boxes with their spans."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.records import Text, TextAnalysis
from schemas.stage import WeightsNotFound
from specialists.grounding_hf import GroundingOptions, OwlGrounding, ground_boxes
from tests.support.grounding_cases import (
    CAPTION,
    CAPTIONER,
    assert_schema_valid_triplets_inside_each_image,
    grounding_record,
    random_image,
)


@pytest.fixture(scope="module")
def owl_dir(tmp_path_factory) -> str:
    from tests.support.tiny_models.owlv2 import build_tiny_owlv2

    return str(build_tiny_owlv2(tmp_path_factory.mktemp("tiny-owlv2")))


@pytest.fixture(scope="module")
def grounding(owl_dir) -> OwlGrounding:
    specialist = OwlGrounding("grounding", GroundingOptions(model=owl_dir, min_score=0.0, max_regions=2))
    specialist.setup()
    return specialist


def test_ground_boxes_thresholds_suppresses_overlaps_and_keeps_the_best_first() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], dtype=float)
    scores = np.array([0.6, 0.9, 0.5, 0.05])
    assert ground_boxes(scores, boxes, min_score=0.1, nms_iou=0.5, max_regions=4) == [
        ((1.0, 1.0, 10.0, 10.0), 0.9),
        ((20.0, 20.0, 30.0, 30.0), 0.5),
    ]
    assert ground_boxes(scores, boxes, min_score=0.1, nms_iou=0.5, max_regions=1) == [((1.0, 1.0, 10.0, 10.0), 0.9)]
    assert ground_boxes(scores, boxes, min_score=0.95, nms_iou=0.5, max_regions=4) == []


def test_phrases_are_noun_chunks_with_spans_and_the_blacklist_removes_therandom_image(grounding) -> None:
    record = grounding_record(Text("brief", CAPTION, CAPTIONER))
    spans = grounding.phrase_spans(record)
    assert [(s.phrase, s.start, s.end) for s in spans] == [
        ("A cat", 0, 5),
        ("a red sofa", 17, 27),
        ("the window", 36, 46),
    ]


def test_the_text_filters_noun_phrase_spans_are_used_when_present(grounding) -> None:
    image = CAPTION.index("the image")
    analysed = Text("brief", CAPTION, CAPTIONER, analysis=TextAnalysis(noun_phrases=[(2, 5), (image, image + 9)]))
    spans = grounding.phrase_spans(grounding_record(analysed))
    assert [s.phrase for s in spans] == ["cat"]  # "the image" is blacklisted


def test_only_configured_granularities_are_grounded(owl_dir) -> None:
    brief_only = OwlGrounding("g", GroundingOptions(model=owl_dir, granularities=("brief",)))
    brief_only.setup()
    record = grounding_record(Text("detailed", "A woman rides a bicycle.", CAPTIONER))
    assert brief_only.phrase_spans(record) == []


def test_grounded_phrases_are_schema_valid_triplets_with_boxes_inside_each_image(grounding) -> None:
    assert_schema_valid_triplets_inside_each_image(grounding)


def test_a_phrase_without_a_box_above_min_score_is_not_written(owl_dir) -> None:
    strict = OwlGrounding("g", GroundingOptions(model=owl_dir, min_score=1.1))
    record = grounding_record(Text("brief", CAPTION, CAPTIONER))
    strict.process([record], [random_image()])
    assert record.phrases == []


def test_missing_grounding_weights_name_every_place_looked_in(tmp_path) -> None:
    with pytest.raises(WeightsNotFound, match=r"grounding \(hf_grounding\): weights for .*no-owl.* not found"):
        OwlGrounding("grounding", GroundingOptions(model=str(tmp_path / "no-owl"))).setup()
