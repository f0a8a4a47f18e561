"""Ultralytics SAM segmentation on a random-init MobileSAM built on disk (256-pixel input)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.config.registry import stage_class
from schemas.masks import decode_mask
from schemas.records import GroundedRegion, ImageRecord, Mask, Phrase, Provenance, Region, Text
from schemas.stage import WeightsNotFound
from schemas.validation import validate_record
from specialists.segment_sam_ultralytics import WEIGHTS_NAMES, UltralyticsSamOptions, UltralyticsSamSegmenter

DETECTOR = Provenance("detector", "tiny", 0)


def _image(height: int = 48, width: int = 80) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)


def _record(width: int = 80, height: int = 48) -> ImageRecord:
    return ImageRecord("e" * 64, "mem://e", width, height, "png")


def _objects() -> list[Region]:
    return [
        Region("object", (2, 2, 30, 40), "cat", DETECTOR, score=0.9),
        Region("object", (30, 10, 78, 45), "sofa", DETECTOR, score=0.8),
    ]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from tests.support.tiny_models.sam_ultralytics import build_tiny_mobile_sam

    return build_tiny_mobile_sam(tmp_path_factory.mktemp("tiny-sam-ultralytics") / "tiny-mobile_sam.pt")


@pytest.fixture(scope="module")
def sam(weights) -> UltralyticsSamSegmenter:
    from tests.support.tiny_models.sam_ultralytics import IMAGE_SIZE

    segmenter = UltralyticsSamSegmenter(
        "sam", UltralyticsSamOptions(weights=str(weights), trust_pickle_weights=True, image_size=IMAGE_SIZE)
    )
    segmenter.setup()
    return segmenter


def test_each_object_box_gets_a_mask_at_the_image_size_a_polygon_and_quality_metrics(sam) -> None:
    record = _record()
    record.regions += [*_objects(), Region("ocr_line", (0, 0, 10, 5), "text", DETECTOR, score=0.8)]
    sam.process([record], [_image()])
    validate_record(record)
    cat, sofa, line = record.regions
    assert line.mask is None and line.polygon is None and line.metrics == {}  # not a prompt kind
    for region in (cat, sofa):
        assert region.mask.size == (48, 80) and decode_mask(region.mask).shape == (48, 80)
        assert region.polygon is not None and len(region.polygon) >= 6
        assert set(region.metrics) == {"predicted_iou", "stability_score"}
        assert 0.0 < region.metrics["stability_score"] < 1.0  # the tiny model's logits spread over a few units


def test_masks_and_predicted_iou_are_ultralytics_own_for_the_same_boxes(sam) -> None:
    record = _record()
    record.regions += _objects()
    sam.process([record], [_image()])
    predictor = sam.predictor
    predictor.set_image(np.ascontiguousarray(_image()[:, :, ::-1]))
    masks, boxes = predictor.inference_features(predictor.features, (48, 80), bboxes=[r.bbox for r in record.regions])
    predictor.reset_image()
    for region, mask, confidence in zip(record.regions, masks, boxes[:, 4], strict=True):
        assert np.array_equal(decode_mask(region.mask), mask.numpy())
        assert region.metrics["predicted_iou"] == pytest.approx(float(confidence))


def test_all_boxes_of_an_image_go_through_the_mask_decoder_in_one_call(sam, monkeypatch) -> None:
    decoder = sam.predictor._inference_features
    calls: list[int] = []

    def counting(features, *prompts, **options):
        calls.append(len(prompts[0]))  # boxes (SAM) or box corner points (SAM 2), one row per box
        return decoder(features, *prompts, **options)

    monkeypatch.setattr(sam.predictor, "_inference_features", counting)
    record = _record()
    record.regions += _objects()
    sam.process([record], [_image()])
    assert calls == [2]


def test_grounded_phrase_regions_are_segmented_in_images_of_different_sizes(sam) -> None:
    small, large = _record(40, 30), _record(80, 48)
    grounded = GroundedRegion((5, 5, 35, 25), score=0.7)
    caption = Text("brief", "cat on a mat", DETECTOR)
    small.texts.append(caption)
    small.phrases.append(Phrase(caption.id, 0, 3, "cat", [grounded], DETECTOR, score=0.7))
    large.regions.append(Region("object", (10, 10, 70, 40), "sofa", DETECTOR, score=0.8))
    sam.process([small, large], [_image(30, 40), _image()])
    for record in (small, large):
        validate_record(record)
    assert decode_mask(grounded.mask).shape == (30, 40) and grounded.polygon is not None
    assert decode_mask(large.regions[0].mask).shape == (48, 80)


def test_max_boxes_limits_the_prompts_of_an_image(weights) -> None:
    segmenter = UltralyticsSamSegmenter(
        "sam", UltralyticsSamOptions(weights=str(weights), trust_pickle_weights=True, image_size=256, max_boxes=1)
    )
    record = _record()
    record.regions += _objects()
    segmenter.process([record], [_image()])
    assert record.regions[0].mask is not None and record.regions[1].mask is None


def test_an_image_without_boxes_to_segment_calls_no_model_and_changes_nothing(sam, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the model was called")

    monkeypatch.setattr(sam.predictor, "set_image", refuse)
    masked = Region("object", (2, 2, 30, 40), "cat", DETECTOR, score=0.9, mask=Mask((48, 80), "0"))
    empty_box = Region("object", (10, 10, 10, 30), "line", DETECTOR, score=0.9)
    record = _record()
    record.regions += [masked, empty_box, Region("ocr_line", (0, 0, 10, 5), "text", DETECTOR, score=0.8)]
    before = record.to_row()
    sam.process([record, _record(20, 20)], [_image(), _image(20, 20)])
    assert record.to_row() == before


def test_missing_weights_fail_naming_the_file_and_download_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    segmenter = UltralyticsSamSegmenter("sam", UltralyticsSamOptions(weights="mobile_sam.pt"))
    check = segmenter.check_weights()
    assert not check.found and check.looked_in == (str(tmp_path / "mobile_sam.pt"),)
    with pytest.raises(
        WeightsNotFound, match=f"sam \\(sam_ultralytics\\): weights file not found: {tmp_path}/mobile_sam.pt"
    ):
        segmenter.setup()
    assert list(tmp_path.iterdir()) == []


def test_provenance_is_the_weights_file_name_and_its_sha256_prefix(sam) -> None:
    name, _, digest = sam.model_id.partition("@sha256:")
    assert name == "tiny-mobile_sam.pt" and len(digest) == 12


def test_a_weights_name_ultralytics_cannot_map_to_an_architecture_is_refused() -> None:
    from ultralytics.models.sam.build import sam_model_map

    assert set(WEIGHTS_NAMES) <= set(sam_model_map)
    UltralyticsSamOptions(weights="/w/finetuned-sam2.1_b.pt")
    with pytest.raises(ValueError, match=r"weights: 'sam\.pt' must end with one of sam_h\.pt"):
        UltralyticsSamOptions(weights="sam.pt")


def test_the_backend_is_registered_as_sam_ultralytics() -> None:
    assert stage_class("specialists", "sam_ultralytics") is UltralyticsSamSegmenter
