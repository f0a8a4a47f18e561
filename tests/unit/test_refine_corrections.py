"""The merge corrects: fused boxes, voted adds, relabels and re-grounded phrases, each recorded as a change."""

from __future__ import annotations

import pytest

from refine.box_fusion import fuse_boxes
from refine.merge import UNCONFIRMED, MergeSettings, merge_round
from schemas.arrow import records_to_table
from schemas.records import Drop, GroundedRegion, ImageRecord, Phrase, Provenance, Region, Text

IMPORTED = Provenance("import:coco", "file", 0)
DETECTOR = Provenance("hf_detection", "rtdetr", 0)
MODEL = Provenance("refine", "round", 0)
SETTINGS = MergeSettings(match_iou=0.5)


def image(*regions: Region, texts: tuple[Text, ...] = ()) -> ImageRecord:
    return ImageRecord("e" * 64, "x.jpg", 200, 200, "jpeg", regions=list(regions), texts=list(texts))


def predicted(*regions: Region) -> ImageRecord:
    return image(*regions)


# -- fusion ----------------------------------------------------------------------------------


def test_fuse_boxes_weights_coordinates_by_score() -> None:
    fused = fuse_boxes([(10, 10, 100, 100), (20, 10, 110, 100)], [0.5, 1.0], 200, 200, 0.5)
    assert fused == pytest.approx((16.667, 10, 106.667, 100), abs=0.01)


def test_fuse_boxes_of_one_box_is_that_box() -> None:
    assert fuse_boxes([(1, 2, 3, 4)], [0.3], 10, 10, 0.5) == (1.0, 2.0, 3.0, 4.0)


def test_an_agreeing_prediction_moves_the_box_to_the_weighted_fusion_and_records_the_old_box() -> None:
    record = image(Region("object", (10, 10, 100, 100), "cat", IMPORTED))  # unscored: weighs 0.5
    stats = merge_round(
        record, predicted(Region("object", (20, 10, 110, 100), "cat", MODEL, score=1.0)), {"object"}, 1, SETTINGS
    )
    (region,) = record.regions
    assert region.bbox == pytest.approx((16.667, 10, 106.667, 100), abs=0.01)
    (change,) = record.changes
    assert (change.field, change.old_value, change.round, change.annotation_id) == (
        "bbox",
        [10.0, 10.0, 100.0, 100.0],
        1,
        region.id,
    )
    assert change.new_value == pytest.approx(list(region.bbox))
    assert stats.fused == {"object": 1} and stats.confirmed == {"object": 1}


def test_fusion_off_keeps_the_box() -> None:
    record = image(Region("object", (10, 10, 100, 100), "cat", IMPORTED))
    merge_round(
        record,
        predicted(Region("object", (20, 10, 110, 100), "cat", MODEL, score=1.0)),
        {"object"},
        1,
        MergeSettings(fuse_boxes=False),
    )
    assert record.regions[0].bbox == (10, 10, 100, 100) and not record.changes


def test_an_ocr_line_keeps_the_box_its_quad_bounds() -> None:
    quad = (10, 10, 100, 10, 100, 30, 10, 30)
    record = image(Region("ocr_line", (10, 10, 100, 30), "EXIT", IMPORTED, quad=quad))
    merge_round(record, predicted(Region("ocr_line", (14, 10, 104, 30), "EXIT", MODEL)), {"ocr_line"}, 1, SETTINGS)
    assert record.regions[0].bbox == (10, 10, 100, 30) and not record.changes


# -- adds ------------------------------------------------------------------------------------


def test_an_unscored_prediction_is_kept_as_a_vote_then_added_when_the_next_round_confirms_it() -> None:
    record = image()
    merge_round(record, predicted(Region("object", (50, 50, 150, 150), "dog", MODEL)), {"object"}, 1, SETTINGS)
    assert record.regions == [] and [d.rule for d in record.dropped] == [UNCONFIRMED]
    stats = merge_round(record, predicted(Region("object", (60, 50, 160, 150), "dog", MODEL)), {"object"}, 2, SETTINGS)
    (dog,) = record.regions
    assert dog.bbox == pytest.approx((55, 50, 155, 150)) and dog.provenance.round == 2
    (added,) = record.changes
    assert (added.field, added.old, added.round, added.by) == ("added", None, 2, record.dropped[0].annotation_id)
    assert stats.added == {"object": 1}


def test_an_unscored_prediction_is_not_confirmed_by_a_vote_of_its_own_round() -> None:
    record = image()
    twice = predicted(
        Region("object", (50, 50, 150, 150), "dog", MODEL), Region("object", (52, 50, 152, 150), "dog", MODEL)
    )
    merge_round(record, twice, {"object"}, 1, SETTINGS)
    assert record.regions == [] and [d.rule for d in record.dropped] == [UNCONFIRMED, UNCONFIRMED]


def test_an_unscored_prediction_over_a_box_a_filter_dropped_is_confirmed_by_that_second_source() -> None:
    record = image()
    weak = Region("object", (40, 40, 140, 140), "dog", DETECTOR, score=0.1)
    record.dropped.append(Drop.of(weak, stage="confidence", rule="min_score", value=0.1, threshold=0.3))
    merge_round(record, predicted(Region("object", (50, 50, 150, 150), "dog", MODEL)), {"object"}, 1, SETTINGS)
    (dog,) = record.regions
    assert dog.text == "dog" and record.changes[0].by == weak.id
    assert dog.bbox == pytest.approx(
        (48.333, 48.333, 148.333, 148.333), abs=0.01
    )  # weights 0.5 (unscored) and 0.1: mostly the model


def test_a_second_source_with_another_label_is_no_vote() -> None:
    record = image()
    cat = Region("object", (40, 40, 140, 140), "cat", DETECTOR, score=0.1)
    record.dropped.append(Drop.of(cat, stage="confidence", rule="min_score", value=0.1, threshold=0.3))
    merge_round(record, predicted(Region("object", (50, 50, 150, 150), "dog", MODEL)), {"object"}, 1, SETTINGS)
    assert record.regions == []


def test_what_the_merge_itself_removed_is_no_vote() -> None:
    record = image(Region("object", (50, 50, 150, 150), "dog", DETECTOR))
    record.drop(record.regions[0], stage="refine_merge", rule="refine_disagreement")
    merge_round(record, predicted(Region("object", (50, 50, 150, 150), "dog", MODEL)), {"object"}, 2, SETTINGS)
    assert record.regions == []


# -- relabels --------------------------------------------------------------------------------


def test_two_sources_that_contradict_a_label_in_one_round_relabel_it() -> None:
    wrong = Region("object", (10, 10, 100, 100), "dog", IMPORTED)
    record = image(wrong, Region("object", (12, 12, 100, 100), "cat", DETECTOR, score=0.8))
    stats = merge_round(record, predicted(Region("object", (11, 10, 100, 100), "cat", MODEL)), {"object"}, 1, SETTINGS)
    assert [r.text for r in record.regions] == ["cat", "cat"]
    label = next(c for c in record.changes if c.field == "text")
    assert (label.annotation_id, label.old_value, label.new_value) == (wrong.id, "dog", "cat")
    assert stats.relabelled == {"object": 1} and stats.confirmed == {"object": 1}


def test_one_contradiction_is_no_relabel() -> None:
    record = image(Region("object", (10, 10, 100, 100), "dog", IMPORTED))
    merge_round(record, predicted(Region("object", (11, 10, 100, 100), "cat", MODEL)), {"object"}, 1, SETTINGS)
    assert record.regions[0].text == "dog" and not [c for c in record.changes if c.field == "text"]


def test_relabelled_region_survives_a_round_trip_through_arrow_with_its_changes() -> None:
    record = image(Region("object", (10, 10, 100, 100), "dog", IMPORTED))
    for round_ in (1, 2):
        merge_round(record, predicted(Region("object", (11, 10, 100, 100), "cat", MODEL)), {"object"}, round_, SETTINGS)
    back = ImageRecord.from_row(records_to_table([record]).to_pylist()[0])
    assert back.changes == record.changes and back.regions[0].text == "cat"
    assert [c.field for c in back.changes] == ["bbox", "text"]  # fused with the prediction, then relabelled


# -- re-grounding ----------------------------------------------------------------------------


def test_a_replaced_caption_moves_the_phrases_it_still_contains_and_drops_the_others() -> None:
    old = Text("brief", "a dog on the grass", IMPORTED, score=0.1)
    record = image(texts=(old,))
    grass = GroundedRegion((0, 150, 200, 200))
    record.phrases = [
        Phrase(old.id, 0, 5, "a dog", [GroundedRegion((10, 10, 90, 90))], DETECTOR),
        Phrase(old.id, 9, 18, "the grass", [grass], DETECTOR),
    ]
    new = Text("brief", "a brown puppy runs on the grass", MODEL, score=0.9)
    result = image(texts=(new,))
    stats = merge_round(record, result, set(), 1, SETTINGS)
    (moved,) = record.phrases
    assert (moved.text_id, moved.start, moved.end, moved.phrase) == (new.id, 22, 31, "the grass")
    assert new.text[moved.start : moved.end] == "the grass" and moved.regions == [grass]
    assert [(d.annotation_type, d.rule) for d in record.dropped] == [
        ("phrase", "refine_replaced"),
        ("text", "refine_replaced"),
    ]
    phrase_change = next(c for c in record.changes if c.field == "phrase")
    assert phrase_change.old_value["text_id"] == old.id and phrase_change.new_value == {
        "id": moved.id,
        "text_id": new.id,
        "start": 22,
        "end": 31,
    }
    text_change = next(c for c in record.changes if c.field == "text")
    assert (text_change.old_value, text_change.new_value, text_change.by) == (old.text, new.text, old.id)
    assert stats.changed == {"text": 1, "phrase": 1} and stats.removed == {"phrase": 1}


def test_a_phrase_matches_whole_words_only() -> None:
    old = Text("brief", "a cat", IMPORTED, score=0.1)
    record = image(texts=(old,))
    record.phrases = [Phrase(old.id, 2, 5, "cat", [GroundedRegion((1, 1, 9, 9))], DETECTOR)]
    merge_round(record, image(texts=(Text("brief", "a caterpillar", MODEL, score=0.9),)), set(), 1, SETTINGS)
    assert record.phrases == [] and record.dropped[0].rule == "refine_replaced"
