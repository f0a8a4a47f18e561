"""Region filters: confidence per source and kind, SAM metrics, geometry, agreement, blacklisted labels
and phrases; drop records survive Parquet; filter stages satisfy the Stage protocol."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pyarrow.parquet as pq
import pytest

from filters.blacklist_filter import BlacklistFilter, BlacklistOptions
from filters.nms import NmsFilter, NmsOptions
from filters.region_agreement import AgreementFilter, AgreementOptions
from filters.region_confidence import ConfidenceFilter, ConfidenceOptions
from filters.region_geometry import GeometryFilter, GeometryOptions
from schemas.arrow import rows_to_table, table_to_rows
from schemas.masks import encode_mask
from schemas.metrics import CLIP_SIMILARITY
from schemas.records import GroundedRegion, ImageRecord, Phrase, Provenance, Region, Text
from schemas.score_prior import UnscoredPriors
from schemas.stage import Stage

DETECTOR = Provenance("detector", "dino")
OCR = Provenance("ocr", "rapidocr")
SAM = Provenance("sam", "sam-b")
GROUNDER = Provenance("grounder", "grounding-dino")


def _record(regions: list[Region] = (), phrases: list[Phrase] = (), size: int = 100) -> ImageRecord:
    return ImageRecord("img", "file:///img.png", size, size, "png", regions=list(regions), phrases=list(phrases))


def _rules(record: ImageRecord) -> list[tuple[str, str]]:
    return [(d.annotation_id, d.rule) for d in record.dropped]


def test_confidence_thresholds_by_kind_and_by_source() -> None:
    weak_object = Region("object", (0, 0, 50, 50), "dog", DETECTOR, score=0.25)
    strong_object = Region("object", (0, 0, 50, 50), "cat", DETECTOR, score=0.35)
    ocr_line = Region("ocr_line", (0, 0, 50, 10), "EXIT", OCR, score=0.45)
    record = _record([weak_object, strong_object, ocr_line])
    ConfidenceFilter("confidence", ConfidenceOptions()).process([record], None)
    assert record.regions == [strong_object]
    assert [(d.rule, d.value, d.threshold) for d in record.dropped] == [
        ("min_score", 0.25, 0.3),
        ("min_score", pytest.approx(0.45), 0.5),
    ]
    strict = _record([strong_object])
    ConfidenceFilter("confidence", ConfidenceOptions(min_score_by_source={"detector": 0.4})).process([strict], None)
    assert strict.regions == [] and strict.dropped[0].threshold == 0.4


def test_sam_masks_need_predicted_iou_088_and_stability_095() -> None:
    good = Region("proposal", (0, 0, 9, 9), "", SAM, metrics={"predicted_iou": 0.9, "stability_score": 0.96})
    unstable = Region("proposal", (0, 0, 8, 8), "", SAM, metrics={"predicted_iou": 0.9, "stability_score": 0.94})
    unsure = Region("proposal", (0, 0, 7, 7), "", SAM, metrics={"predicted_iou": 0.87, "stability_score": 0.99})
    record = _record([good, unstable, unsure])
    ConfidenceFilter("confidence", ConfidenceOptions()).process([record], None)
    assert record.regions == [good]
    assert _rules(record) == [(unstable.id, "min_stability_score"), (unsure.id, "min_predicted_iou")]


def test_grounded_phrase_below_score_is_dropped() -> None:
    weak = Phrase("t1", 0, 5, "a dog", [GroundedRegion((0, 0, 10, 10), score=0.2)], GROUNDER)
    strong = Phrase("t1", 6, 11, "a cat", [GroundedRegion((0, 0, 10, 10), score=0.5)], GROUNDER)
    record = _record(phrases=[weak, strong])
    ConfidenceFilter("confidence", ConfidenceOptions()).process([record], None)
    assert record.phrases == [strong] and _rules(record) == [(weak.id, "min_phrase_score")]


def test_geometry_clips_and_drops_degenerate_tiny_and_near_whole_image() -> None:
    overhanging = Region("object", (-10, -10, 60, 60), "dog", DETECTOR, score=0.9)
    degenerate = Region("object", (20, 20, 20.5, 60), "pole", DETECTOR, score=0.9)
    tiny = Region("object", (0, 0, 1.5, 1.5), "speck", DETECTOR, score=0.9)
    whole_object = Region("object", (0, 0, 200, 200), "cat", DETECTOR, score=0.9)
    whole_word = Region("ocr_word", (0, 0, 199, 199), "A", OCR, score=0.9)
    record = _record([overhanging, degenerate, tiny, whole_object, whole_word], size=200)
    GeometryFilter("geometry", GeometryOptions()).process([record], None)
    assert record.regions == [overhanging, whole_object]
    assert overhanging.bbox == (0.0, 0.0, 60.0, 60.0)
    assert _rules(record) == [(degenerate.id, "degenerate"), (tiny.id, "tiny"), (whole_word.id, "near_whole_image")]


def test_geometry_drops_tiny_and_fragmented_masks() -> None:
    speckled = np.zeros((100, 100), bool)
    speckled[::10, ::10] = True  # 100 one-pixel islands
    solid = np.zeros((100, 100), bool)
    solid[10:60, 10:60] = True
    dot = np.zeros((100, 100), bool)
    dot[50, 50] = True
    regions = [
        Region("proposal", (0, 0, 91, 91), "", SAM, mask=encode_mask(speckled)),
        Region("proposal", (10, 10, 60, 60), "", SAM, mask=encode_mask(solid)),
        Region("object", (45, 45, 55, 55), "dot", SAM, mask=encode_mask(dot)),
    ]
    record = _record(list(regions))
    GeometryFilter("geometry", GeometryOptions(min_mask_area_fraction=2e-4)).process([record], None)
    # A bad mask costs the mask, not the box: every region stays, the two bad ones without a mask.
    assert record.regions == regions and [r.mask is None for r in regions] == [True, False, True]
    assert [(d.rule, d.value) for d in record.dropped] == [("mask_fragments", 100.0), ("tiny_mask", 1e-4)]
    assert [(d.annotation_type, d.annotation_id) for d in record.dropped] == [
        ("mask", regions[0].id), ("mask", regions[2].id)]  # fmt: skip


def test_a_box_scored_09_keeps_its_box_when_its_sam_mask_fails_predicted_iou() -> None:
    person = Region(
        "object", (10, 10, 60, 90), "person", DETECTOR, score=0.9, mask=encode_mask(np.ones((100, 100), bool)),
        polygon=(10, 10, 60, 10, 60, 90), metrics={"predicted_iou": 0.86, "stability_score": 0.97},
    )  # fmt: skip
    record = _record([person])
    ConfidenceFilter("confidence", ConfidenceOptions()).process([record], None)
    assert record.regions == [person] and (person.mask, person.polygon, person.metrics) == (None, None, {})
    (drop,) = record.dropped
    assert (drop.annotation_type, drop.annotation_id, drop.rule, drop.threshold) == (
        "mask", person.id, "min_predicted_iou", 0.88)  # fmt: skip
    assert drop.value == pytest.approx(0.86)


def test_a_weak_box_with_a_mask_is_dropped_whole() -> None:
    weak = Region("object", (10, 10, 60, 90), "person", DETECTOR, score=0.2,
                  mask=encode_mask(np.ones((100, 100), bool)), metrics={"predicted_iou": 0.5})  # fmt: skip
    record = _record([weak])
    ConfidenceFilter("confidence", ConfidenceOptions()).process([record], None)
    assert record.regions == [] and [(d.annotation_type, d.rule) for d in record.dropped] == [("region", "min_score")]


def test_unscored_regions_are_judged_by_their_source_prior() -> None:
    florence = Provenance("florence2", "florence-community/Florence-2-large")
    box = Region("object", (0, 0, 50, 50), "dog", florence)
    kept = _record([box])
    ConfidenceFilter("confidence", ConfidenceOptions()).process([kept], None)
    assert kept.regions == [box]  # default prior 0.5 >= 0.3
    strict = _record([box])
    priors = UnscoredPriors(by_source={"florence2": 0.25})
    ConfidenceFilter("confidence", ConfidenceOptions(unscored=priors)).process([strict], None)
    assert strict.regions == [] and [(d.rule, d.value, d.threshold) for d in strict.dropped] == [
        ("min_score", 0.25, 0.3)]  # fmt: skip


def test_agreement_thresholds_the_stored_clip_similarity_and_keeps_unscored() -> None:
    agree = Region("object", (0, 0, 9, 9), "dog", DETECTOR, metrics={CLIP_SIMILARITY: 0.31})
    disagree = Region("object", (0, 0, 8, 8), "dog", DETECTOR, metrics={CLIP_SIMILARITY: 0.12})
    unscored = Region("object", (0, 0, 7, 7), "dog", DETECTOR)
    record = _record([agree, disagree, unscored])
    AgreementFilter("agreement", AgreementOptions()).process([record], None)
    assert record.regions == [agree, unscored]
    assert [(d.rule, d.value, d.threshold) for d in record.dropped] == [
        ("min_clip_similarity", pytest.approx(0.12), 0.2)
    ]


@pytest.fixture(scope="module")
def blacklist_filter() -> BlacklistFilter:
    stage = BlacklistFilter("blacklist", BlacklistOptions())
    stage.setup()
    return stage


def test_blacklist_drops_it_and_meaningless_labels_but_not_ocr(blacklist_filter: BlacklistFilter) -> None:
    it = Phrase("t1", 0, 2, "It", [GroundedRegion((0, 0, 10, 10), score=0.9)], GROUNDER)
    dog = Phrase("t1", 10, 15, "a dog", [GroundedRegion((0, 0, 10, 10), score=0.9)], GROUNDER)
    background = Region("object", (0, 0, 50, 50), "Background", DETECTOR, score=0.9)
    person = Region("object", (0, 0, 50, 50), "person", DETECTOR, score=0.9)
    written_it = Region("ocr_word", (0, 0, 10, 10), "it", OCR, score=0.9)
    record = _record([background, person, written_it], [it, dog])
    blacklist_filter.process([record], None)
    assert record.phrases == [dog] and record.regions == [person, written_it]
    assert _rules(record) == [(it.id, "blacklisted_phrase"), (background.id, "blacklisted_label")]


def test_drop_records_round_trip_through_parquet(blacklist_filter: BlacklistFilter) -> None:
    caption = Text("brief", "It is a dog", Provenance("captioner", "blip"))
    it = Phrase(caption.id, 0, 2, "It", [GroundedRegion((0, 0, 10, 10), score=0.9)], GROUNDER)
    near = Region("object", (10, 10, 50, 50), "dog", DETECTOR, score=0.9)
    duplicate = Region("object", (11, 11, 50, 50), "dog", DETECTOR, score=0.8)
    record = _record([near, duplicate], [it])
    record.texts.append(caption)
    blacklist_filter.process([record], None)
    NmsFilter("nms", NmsOptions()).process([record], None)
    buffer = io.BytesIO()
    pq.write_table(rows_to_table([record.to_row()]), buffer)
    (row,) = table_to_rows(pq.read_table(io.BytesIO(buffer.getvalue())))
    restored = ImageRecord.from_row(row)
    assert [d.to_dict() for d in restored.dropped] == [
        {**d.to_dict(), "value": pytest.approx(d.value) if d.value is not None else None} for d in record.dropped
    ]
    nms_drop = restored.dropped[1]
    assert (nms_drop.stage, nms_drop.rule, nms_drop.by, nms_drop.threshold) == ("nms", "nms", near.id, 0.5)
    assert restored.dropped[0].restore() == it
    assert restored.dropped[1].restore() == duplicate


@pytest.mark.parametrize(
    ("stage", "change"),
    [
        (ConfidenceFilter("c", ConfidenceOptions()), {"min_phrase_score": 0.5}),
        (GeometryFilter("g", GeometryOptions()), {"min_side_px": 2.0}),
        (AgreementFilter("a", AgreementOptions()), {"metric": "siglip_score"}),
        (NmsFilter("n", NmsOptions()), {"use_masks": False}),
    ],
)
def test_filters_are_stages_without_pixels_fingerprinted_by_options(stage: Stage, change: dict) -> None:
    assert isinstance(stage, Stage)
    assert stage.needs_pixels is False
    assert type(stage)(stage.name, stage.options).fingerprint() == stage.fingerprint()
    assert type(stage)(stage.name, replace(stage.options, **change)).fingerprint() != stage.fingerprint()
