"""NMS: agreement with a brute-force greedy reference, suppressor attribution, masks, sources, OCR."""

from __future__ import annotations

import numpy as np
import pytest

from filters.nms import NmsFilter, NmsOptions
from schemas.boxes import box_iou, box_nms, iou_matrix
from schemas.masks import encode_mask
from schemas.records import ImageRecord, Provenance, Region
from schemas.score_prior import UnscoredPriors, effective_score

DETECTOR = Provenance("detector", "dino")
OTHER = Provenance("detector_b", "yolo")


def brute_force_nms(boxes: np.ndarray, scores: np.ndarray, groups: np.ndarray, threshold: float):
    """Textbook greedy NMS, one pair at a time: (kept flags, suppressor index per box)."""
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    by = [-1] * len(boxes)
    kept = [False] * len(boxes)
    for position, i in enumerate(order):
        if by[i] >= 0:
            continue
        kept[i] = True
        for j in order[position + 1 :]:
            if by[j] < 0 and groups[j] == groups[i] and box_iou(boxes[i], boxes[j]) > threshold:
                by[j] = i
    return np.array(kept), np.array(by)


def random_boxes(rng: np.random.Generator, count: int) -> np.ndarray:
    corners = rng.uniform(0, 200, size=(count, 2))
    sizes = rng.uniform(5, 60, size=(count, 2))
    return np.hstack([corners, corners + sizes]).astype(np.float32)


def clustered_boxes(rng: np.random.Generator, count: int) -> np.ndarray:
    """Detector-like boxes: about four jittered detections per object."""
    objects = random_boxes(rng, max(1, count // 4))
    owner = rng.integers(0, len(objects), count)
    return (objects[owner] + rng.normal(0, 3, (count, 4))).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("threshold", [0.3, 0.5])
def test_box_nms_agrees_with_brute_force_on_random_boxes(seed: int, threshold: float) -> None:
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 300)
    scores = rng.random(300).astype(np.float32)
    groups = rng.integers(0, 3, 300)
    kept, by = brute_force_nms(boxes, scores, groups, threshold)
    result = box_nms(boxes, scores, threshold, groups)
    assert np.array_equal(result.kept, kept)
    assert np.array_equal(result.by, by)
    suppressed = np.flatnonzero(~kept)
    expected_iou = [box_iou(boxes[i], boxes[by[i]]) for i in suppressed]
    np.testing.assert_allclose(result.iou[suppressed], expected_iou, rtol=1e-5)
    assert (result.iou[suppressed] > threshold).all()


@pytest.mark.parametrize("rows", [256, 5])
def test_one_large_group_agrees_with_brute_force(monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    monkeypatch.setattr("schemas.boxes._ROWS", rows)
    rng = np.random.default_rng(11)
    boxes, scores = clustered_boxes(rng, 600), rng.random(600)
    groups = np.zeros(600, dtype=np.int64)
    kept, by = brute_force_nms(boxes, scores, groups, 0.5)
    result = box_nms(boxes, scores, 0.5)
    assert np.array_equal(result.by, by) and (~kept).sum() > 100


def test_box_nms_is_the_same_in_small_kernel_blocks_and_pair_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    boxes, scores, groups = clustered_boxes(rng, 400), rng.random(400).astype(np.float32), rng.integers(0, 40, 400)
    default = box_nms(boxes, scores, 0.4, groups)
    monkeypatch.setattr("schemas.boxes._BLOCK", 3)
    monkeypatch.setattr("schemas.boxes._PAIR_CHUNK", 7)
    chunked = box_nms(boxes, scores, 0.4, groups)
    assert np.array_equal(default.by, chunked.by) and np.array_equal(default.iou, chunked.iou)
    assert (~default.kept).sum() > 20


def test_many_images_in_one_batch_give_the_same_drops_as_one_by_one() -> None:
    rng = np.random.default_rng(3)
    records = []
    for i in range(6):
        boxes, scores = clustered_boxes(rng, 30), rng.random(30)
        labels = rng.integers(0, 2, 30)
        regions = [
            Region("object", tuple(b), f"c{c}", DETECTOR, score=float(s), id=f"{i}-{j}")
            for j, (b, s, c) in enumerate(zip(boxes, scores, labels, strict=True))
        ]
        records.append(_record(regions, size=300))
    alone = [ImageRecord.from_row(r.to_row()) for r in records]
    stage = NmsFilter("nms", NmsOptions())
    stage.process(records, None)
    for record in alone:
        stage.process([record], None)
    assert [[d.to_dict() for d in r.dropped] for r in records] == [[d.to_dict() for d in r.dropped] for r in alone]
    assert sum(len(r.dropped) for r in records) > 10


def test_iou_matrix_matches_pairwise_iou() -> None:
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15]], dtype=np.float32)
    b = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 0, 0]], dtype=np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 0.0, 0.0], [25 / 175, 0.0, 0.0]], rtol=1e-6)


def _record(regions: list[Region], size: int = 100) -> ImageRecord:
    return ImageRecord("img", "file:///img.png", size, size, "png", regions=regions)


def test_overlapping_detections_of_one_class_keep_the_best_and_name_it() -> None:
    best = Region("object", (10, 10, 50, 50), "dog", DETECTOR, score=0.9)
    duplicate = Region("object", (12, 12, 52, 52), "dog", DETECTOR, score=0.6)
    other_class = Region("object", (11, 11, 51, 51), "cat", DETECTOR, score=0.5)
    record = _record([best, duplicate, other_class])
    NmsFilter("nms", NmsOptions(cross_source_iou={})).process([record], None)
    assert record.regions == [best, other_class]
    (drop,) = record.dropped
    assert (drop.rule, drop.by, drop.threshold) == ("nms", best.id, 0.5)
    assert drop.value == pytest.approx(box_iou(best.bbox, duplicate.bbox), rel=1e-5)


def test_across_sources_suppression_ignores_labels_but_not_within_a_source() -> None:
    a = Region("object", (10, 10, 50, 50), "car", DETECTOR, score=0.9)
    b = Region("object", (10, 10, 50, 49), "vehicle", OTHER, score=0.8)
    c = Region("object", (10, 10, 49, 50), "truck", DETECTOR, score=0.7)
    record = _record([a, b, c])
    nms = NmsFilter("nms", NmsOptions())
    nms.process([record], None)
    assert record.regions == [a, c]
    assert [(d.rule, d.annotation_id, d.by) for d in record.dropped] == [("nms_cross_source", b.id, a.id)]
    assert nms.drop_counts == {"nms_cross_source": 1}


def test_ocr_quads_are_suppressed_by_their_boxes_regardless_of_text() -> None:
    ocr = Provenance("ocr", "rapidocr")
    quad = (10.0, 10.0, 90.0, 10.0, 90.0, 30.0, 10.0, 30.0)
    line = Region("ocr_line", (10, 10, 90, 30), "OPEN", ocr, score=0.95, quad=quad)
    misread = Region("ocr_line", (11, 10, 90, 31), "0PEN", ocr, score=0.7, quad=quad)
    record = _record([line, misread])
    NmsFilter("nms", NmsOptions()).process([record], None)
    assert record.regions == [line] and record.dropped[0].by == line.id


def _disk(size: int, cx: int, cy: int, radius: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2


def test_mask_nms_uses_mask_iou_not_box_iou() -> None:
    sam = Provenance("sam", "sam-b")
    # Two L-shaped masks with identical boxes but little pixel overlap, and a near-copy of the first.
    first = np.zeros((64, 64), bool)
    first[10:50, 10:20] = True
    first[40:50, 10:50] = True
    second = np.zeros((64, 64), bool)
    second[10:20, 10:50] = True
    second[10:50, 40:50] = True
    copy = first.copy()
    copy[10:12, 10:20] = False
    box = (10, 10, 50, 50)
    regions = [
        Region("proposal", box, "", sam, score=0.9, mask=encode_mask(first)),
        Region("proposal", box, "", sam, score=0.8, mask=encode_mask(second)),
        Region("proposal", box, "", sam, score=0.7, mask=encode_mask(copy)),
    ]
    record = _record(list(regions), size=64)
    NmsFilter("nms", NmsOptions()).process([record], None)
    assert record.regions == regions[:2]
    (drop,) = record.dropped
    assert drop.rule == "mask_nms" and drop.by == regions[0].id
    assert drop.value == pytest.approx(copy.sum() / first.sum(), rel=1e-6)


def test_kinds_without_a_threshold_are_left_alone() -> None:
    a = Region("dense_caption", (0, 0, 50, 50), "a dog", DETECTOR, score=0.9)
    b = Region("dense_caption", (0, 0, 50, 50), "a dog", DETECTOR, score=0.8)
    record = _record([a, b])
    NmsFilter("nms", NmsOptions(iou={})).process([record], None)
    assert record.regions == [a, b] and record.dropped == []


FLORENCE = Provenance("florence2", "florence-community/Florence-2-large")


def test_a_detector_box_scored_095_suppresses_an_unscored_florence_box_of_the_same_object() -> None:
    unscored = Region("object", (10, 10, 50, 50), "dog", FLORENCE)
    scored = Region("object", (11, 10, 50, 51), "dog", DETECTOR, score=0.95)
    record = _record([unscored, scored])
    NmsFilter("nms", NmsOptions()).process([record], None)
    assert record.regions == [scored]
    (drop,) = record.dropped
    assert (drop.rule, drop.annotation_id, drop.by) == ("nms_cross_source", unscored.id, scored.id)


def test_an_unscored_box_ranks_with_its_source_prior() -> None:
    unscored = Region("object", (10, 10, 50, 50), "dog", FLORENCE)
    weak = Region("object", (11, 10, 50, 51), "dog", DETECTOR, score=0.4)
    default = _record([unscored, weak])
    NmsFilter("nms", NmsOptions()).process([default], None)  # default prior 0.5 > 0.4
    assert default.regions == [unscored] and default.dropped[0].by == unscored.id
    distrusted = _record([unscored, weak])
    options = NmsOptions(unscored=UnscoredPriors(by_source={"florence2": 0.2}))
    NmsFilter("nms", options).process([distrusted], None)
    assert distrusted.regions == [weak] and distrusted.dropped[0].by == weak.id


def test_unscored_prior_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unscored prior for 'florence2' is 1.5; it must lie in \[0, 1\]"):
        UnscoredPriors(by_source={"florence2": 1.5})


def test_effective_score_is_the_score_or_the_source_prior() -> None:
    priors = UnscoredPriors(by_source={"import:coco": 1.0}, default=0.5)
    assert effective_score(0.8, "florence2", priors) == 0.8
    assert effective_score(None, "florence2", priors) == 0.5
    assert effective_score(None, "import:coco", priors) == 1.0
