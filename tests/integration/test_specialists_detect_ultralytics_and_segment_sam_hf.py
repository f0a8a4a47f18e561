"""Ultralytics detection and transformers SAM segmentation on tiny random-init models built on disk."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from schemas.masks import decode_mask
from schemas.records import GroundedRegion, ImageRecord, Phrase, Provenance, Region, Text
from schemas.stage import WeightsNotFound
from schemas.validation import validate_record
from specialists.detect_ultralytics import UltralyticsDetector, UltralyticsOptions
from specialists.segment_sam_hf import SamOptions, SamSegmenter, stability_score

DETECTOR = Provenance("detector", "tiny", 0)


def _image(height: int = 48, width: int = 80) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)


def _record(width: int = 80, height: int = 48) -> ImageRecord:
    return ImageRecord("e" * 64, "mem://e", width, height, "png")


@pytest.fixture(scope="module")
def yolo(tmp_path_factory) -> UltralyticsDetector:
    from tests.support.tiny_models.yolo import build_tiny_yolo

    weights = build_tiny_yolo(tmp_path_factory.mktemp("tiny-yolo") / "tiny-yolov8n.pt")
    options = UltralyticsOptions(
        weights=str(weights), trust_pickle_weights=True, min_score=0.0, image_size=64, max_detections=5
    )
    detector = UltralyticsDetector("yolo", options)
    detector.setup()
    return detector


@pytest.fixture(scope="module")
def sam(tmp_path_factory) -> SamSegmenter:
    from tests.support.tiny_models.sam import build_tiny_sam

    segmenter = SamSegmenter("sam", SamOptions(model=str(build_tiny_sam(tmp_path_factory.mktemp("tiny-sam")))))
    segmenter.setup()
    return segmenter


def test_yolo_writes_schema_valid_object_regions_inside_the_image(yolo) -> None:
    record = _record()
    yolo.process([record], [_image()])
    validate_record(record)
    assert len(record.regions) == 5  # min_score 0 keeps max_detections boxes of a random-init model
    for region in record.regions:
        assert region.kind == "object" and region.text in yolo.model.names.values()
        assert 0.0 <= region.score <= 1.0
        x0, y0, x1, y1 = region.bbox
        assert 0 <= x0 <= x1 <= 80 and 0 <= y0 <= y1 <= 48
        assert region.provenance.model.startswith("tiny-yolov8n.pt@sha256:")


def test_yolo_architecture_is_read_from_the_file_name() -> None:
    assert UltralyticsDetector("d", UltralyticsOptions(weights="/w/rtdetr-l.pt")).architecture() == "rtdetr"
    assert UltralyticsDetector("d", UltralyticsOptions(weights="/w/yolo11x.pt")).architecture() == "yolo"
    with pytest.raises(ValueError, match="architecture: 'detr'"):
        UltralyticsOptions(architecture="detr")


def test_missing_ultralytics_weights_fail_naming_the_file_and_download_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    detector = UltralyticsDetector("yolo", UltralyticsOptions(weights="yolov8n.pt"))
    check = detector.check_weights()
    assert not check.found and check.looked_in == (str(tmp_path / "yolov8n.pt"),)
    with pytest.raises(WeightsNotFound, match=f"yolo \\(ultralytics\\): weights file not found: {tmp_path}/yolov8n.pt"):
        detector.setup()
    assert list(tmp_path.iterdir()) == []


def test_stability_score_is_the_iou_of_masks_at_plus_and_minus_offset() -> None:
    logits = torch.tensor([[[2.0, 0.5], [-0.5, -2.0]], [[-3.0, -3.0], [-3.0, -3.0]]])
    # first mask: 1 pixel above +1, 3 pixels above -1; second: empty at both (stable by convention)
    assert stability_score(logits).tolist() == pytest.approx([1 / 3, 1.0])


def test_sam_masks_each_object_box_at_the_image_size_with_quality_metrics(sam) -> None:
    record = _record()
    record.regions += [
        Region("object", (2, 2, 30, 40), "cat", DETECTOR, score=0.9),
        Region("object", (30, 10, 78, 45), "sofa", DETECTOR, score=0.8),
        Region("ocr_line", (0, 0, 10, 5), "text", DETECTOR, score=0.8),  # not a prompt kind
    ]
    sam.process([record], [_image()])
    validate_record(record)
    cat, sofa, line = record.regions
    assert line.mask is None and "predicted_iou" not in line.metrics
    for region in (cat, sofa):
        assert region.mask.size == (48, 80) and decode_mask(region.mask).shape == (48, 80)
        assert set(region.metrics) == {"predicted_iou", "stability_score"}
        assert 0.0 <= region.metrics["stability_score"] <= 1.0


def test_sam_segments_grounded_phrase_regions_and_batches_images_of_different_sizes(sam) -> None:
    small, large = _record(40, 30), _record(80, 48)
    grounded = GroundedRegion((5, 5, 35, 25), score=0.7)
    caption = Text("brief", "cat on a mat", DETECTOR)
    small.texts.append(caption)
    small.phrases.append(Phrase(caption.id, 0, 3, "cat", [grounded], DETECTOR, score=0.7))
    large.regions.append(Region("object", (10, 10, 70, 40), "sofa", DETECTOR, score=0.8))
    empty = _record(20, 20)
    sam.process([small, empty, large], [_image(30, 40), _image(20, 20), _image()])
    for record in (small, empty, large):
        validate_record(record)
    assert decode_mask(grounded.mask).shape == (30, 40)
    assert decode_mask(large.regions[0].mask).shape == (48, 80)
    assert empty.regions == [] and empty.phrases == []


def test_missing_sam_weights_name_every_place_looked_in(tmp_path) -> None:
    segmenter = SamSegmenter("sam", SamOptions(model=str(tmp_path / "no-sam")))
    with pytest.raises(WeightsNotFound, match=r"sam \(sam_hf\): weights for .*no-sam.* not found; looked in"):
        segmenter.setup()
