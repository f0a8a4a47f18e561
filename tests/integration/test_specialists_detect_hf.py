"""Transformers object detection (DETR family) on a tiny random-init DETR built on disk."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.records import ImageRecord
from schemas.stage import WeightsNotFound
from schemas.validation import validate_record
from specialists.detect_hf import HfDetectionOptions, HfDetector


@pytest.fixture(scope="module")
def detr_dir(tmp_path_factory) -> str:
    from tests.support.tiny_models.detr import build_tiny_detr

    return str(build_tiny_detr(tmp_path_factory.mktemp("tiny-detr")))


def _record(width: int, height: int) -> ImageRecord:
    return ImageRecord("d" * 64, "mem://d", width, height, "png")


def _image(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)


def test_detr_boxes_are_labelled_scored_and_inside_images_of_different_sizes(detr_dir) -> None:
    detector = HfDetector("detr", HfDetectionOptions(model=detr_dir, min_score=0.0, max_detections=4))
    wide, tall = _record(80, 48), _record(30, 60)
    detector.process([wide, tall], [_image(48, 80), _image(60, 30)])
    for record in (wide, tall):
        validate_record(record)
        assert 1 <= len(record.regions) <= 4
        scores = [r.score for r in record.regions]
        assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
        for region in record.regions:
            assert region.kind == "object" and region.text in {"cat", "sofa"}
            x0, y0, x1, y1 = region.bbox
            assert 0 <= x0 < x1 <= record.width and 0 <= y0 < y1 <= record.height
            assert region.provenance.model == detector.model_id


def test_min_score_above_every_box_writes_nothing(detr_dir) -> None:
    record = _record(80, 48)
    HfDetector("detr", HfDetectionOptions(model=detr_dir, min_score=0.999)).process([record], [_image(48, 80)])
    assert record.regions == []


def test_missing_detector_weights_name_every_place_looked_in(tmp_path) -> None:
    with pytest.raises(WeightsNotFound, match=r"detr \(hf_detection\): weights for .*no-detr.* not found; looked in"):
        HfDetector("detr", HfDetectionOptions(model=str(tmp_path / "no-detr"))).setup()
