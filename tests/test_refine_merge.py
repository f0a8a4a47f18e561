"""The refinement merge policy on hand-made cases."""

from __future__ import annotations

from refine.merge import AGREEMENTS, DISAGREEMENTS, MergeSettings, merge_round
from schemas.records import ImageRecord, Provenance, Region, Text, TextAnalysis

SPECIALIST = Provenance("haar", "opencv", 0)
MODEL = Provenance("refine", "round-1", 0)
SETTINGS = MergeSettings(match_iou=0.5, drop_after_disagreements=2)


def image(*regions: Region, texts: tuple[Text, ...] = ()) -> ImageRecord:
    return ImageRecord("d" * 64, "x", 200, 200, "jpeg", regions=list(regions), texts=list(texts))


def test_agreeing_prediction_confirms_and_raises_the_score() -> None:
    record = image(Region("object", (10, 10, 100, 100), "cat", SPECIALIST, score=0.4))
    predicted = image(Region("object", (12, 11, 101, 98), "Cat", MODEL, score=0.9))
    stats = merge_round(record, predicted, {"object"}, 1, SETTINGS)
    (region,) = record.regions
    assert region.metrics[AGREEMENTS] == 1 and region.score == 0.9 and region.provenance.round == 0
    assert stats.confirmed == {"object": 1} and stats.agreement_rate == 1.0 and not stats.added


def test_new_confident_box_is_added_with_the_round() -> None:
    record = image(Region("object", (10, 10, 100, 100), "cat", SPECIALIST))
    predicted = image(
        Region("object", (10, 10, 100, 100), "cat", MODEL),
        Region("object", (120, 120, 190, 190), "dog", MODEL, score=0.8),
        Region("object", (0, 150, 40, 199), "cup", MODEL, score=0.2),
    )
    stats = merge_round(record, predicted, {"object"}, 1, SETTINGS)
    assert [(r.text, r.provenance.round) for r in record.regions] == [("cat", 0), ("dog", 1)]
    assert stats.added == {"object": 1}


def test_contradicted_original_is_dropped_after_repeated_rounds() -> None:
    record = image(Region("object", (10, 10, 100, 100), "cat", SPECIALIST))
    merge_round(record, image(Region("object", (10, 10, 100, 100), "dog", MODEL, score=0.3)), {"object"}, 1, SETTINGS)
    assert record.regions[0].metrics[DISAGREEMENTS] == 1 and not record.dropped
    stats = merge_round(record, image(), {"object"}, 2, SETTINGS)
    assert record.regions == [] and stats.removed == {"object": 1}
    (drop,) = record.dropped
    assert (drop.rule, drop.stage, drop.value, drop.threshold) == ("refine_disagreement", "refine_merge", 2.0, 2.0)
    assert drop.restore().text == "cat"


def test_caption_replaced_only_when_it_scores_better() -> None:
    plain = Text("brief", "a thing", SPECIALIST, analysis=TextAnalysis(objects=["thing"], object_complexity=1.0))
    record = image(texts=(plain,))
    worse = Text("brief", "stuff", MODEL, analysis=TextAnalysis(objects=[], object_complexity=0.0))
    merge_round(record, image(texts=(worse,)), set(), 1, SETTINGS)
    assert [t.text for t in record.texts] == ["a thing"] and not record.dropped
    better = Text(
        "brief",
        "a woman rides a red bicycle",
        MODEL,
        analysis=TextAnalysis(objects=["woman", "bicycle"], object_complexity=2.5, action_complexity=2.0),
    )
    stats = merge_round(record, image(texts=(better,)), set(), 2, SETTINGS)
    assert [(t.text, t.provenance.round) for t in record.texts] == [("a woman rides a red bicycle", 2)]
    assert record.dropped[0].rule == "refine_replaced" and record.dropped[0].by == better.id
    assert stats.changed == {"text": 1}


def test_kinds_not_asked_for_are_left_alone() -> None:
    record = image(Region("ocr_line", (10, 10, 100, 30), "EXIT", SPECIALIST))
    merge_round(record, image(), {"object"}, 1, SETTINGS)
    assert record.regions[0].metrics == {}


def test_replaced_caption_takes_its_phrases_and_brings_the_new_ones() -> None:
    from schemas.records import GroundedRegion, Phrase

    old = Text("brief", "a thing", SPECIALIST, score=0.2)
    record = image(texts=(old,))
    record.phrases = [Phrase(old.id, 2, 7, "thing", [GroundedRegion((1, 1, 50, 50))], SPECIALIST)]
    new = Text("brief", "a red bicycle", MODEL, score=0.9)
    grounded = Phrase(new.id, 0, 13, "a red bicycle", [GroundedRegion((20, 20, 150, 150))], MODEL)
    predicted = image(texts=(new,))
    predicted.phrases = [grounded]
    stats = merge_round(record, predicted, set(), 3, SETTINGS)
    assert [(p.phrase, p.provenance.round) for p in record.phrases] == [("a red bicycle", 3)]
    assert sorted((d.annotation_type, d.rule) for d in record.dropped) == [
        ("phrase", "refine_replaced"),
        ("text", "refine_replaced"),
    ]
    assert stats.changed == {"text": 1} and stats.added == {"phrase": 1}
