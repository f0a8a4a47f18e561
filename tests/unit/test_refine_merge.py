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


def rules(record: ImageRecord) -> list[str]:
    return [d.rule for d in record.dropped]


def test_contradicted_original_is_dropped_after_repeated_rounds() -> None:
    record = image(Region("object", (10, 10, 100, 100), "cat", SPECIALIST))
    merge_round(record, image(Region("object", (10, 10, 100, 100), "dog", MODEL, score=0.3)), {"object"}, 1, SETTINGS)
    # One round's "dog" is no relabel yet: the cat counts a disagreement and the dog is kept as a vote.
    assert record.regions[0].metrics[DISAGREEMENTS] == 1 and rules(record) == ["refine_unconfirmed"]
    elsewhere = image(Region("object", (150, 150, 190, 190), "bird", MODEL, score=0.3))
    stats = merge_round(record, elsewhere, {"object"}, 2, SETTINGS)
    assert [r.text for r in record.regions] == [] and stats.removed == {"object": 1}
    (drop,) = [d for d in record.dropped if d.rule == "refine_disagreement"]
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


def test_a_silent_model_gives_no_verdict_unless_silence_contradicts() -> None:
    record = image(Region("object", (10, 10, 100, 100), "cat", SPECIALIST))
    for round_ in (1, 2, 3):
        stats = merge_round(record, image(), {"object"}, round_, SETTINGS)
    assert record.regions[0].metrics == {} and stats.unverified == {"object": 1} and stats.compared == 0
    strict = MergeSettings(drop_after_disagreements=1, silence_contradicts=True)
    stats = merge_round(record, image(), {"object"}, 4, strict)
    assert record.regions == [] and record.dropped[0].rule == "refine_disagreement"


def test_an_overlap_with_the_same_label_confirms_even_beside_a_better_overlapping_other_label() -> None:
    record = image(Region("object", (10, 10, 100, 100), "cat", SPECIALIST))
    predicted = image(
        Region("object", (10, 10, 100, 100), "dog", MODEL, score=0.9),
        Region("object", (14, 14, 100, 104), "cat", MODEL, score=0.7),
    )
    stats = merge_round(record, predicted, {"object"}, 1, SETTINGS)
    assert record.regions[0].metrics == {AGREEMENTS: 1.0} and stats.confirmed == {"object": 1}
    # The dog overlaps a cat the model also saw: it is not added as a new object.
    assert [r.text for r in record.regions] == ["cat"]


def test_a_label_the_model_proposes_in_two_rounds_replaces_the_old_one_in_place() -> None:
    record = image(Region("object", (10, 10, 100, 100), "cat", SPECIALIST))
    region_id = record.regions[0].id
    for round_ in (1, 2):
        dog = Region("object", (12, 10, 100, 100), "dog", MODEL, score=0.9)
        stats = merge_round(record, image(dog), {"object"}, round_, SETTINGS)
        assert [r.text for r in record.regions] == (["cat"] if round_ == 1 else ["dog"])
    (region,) = record.regions
    assert region.id == region_id and region.provenance.round == 0 and DISAGREEMENTS not in region.metrics
    assert stats.relabelled == {"object": 1} and not stats.removed and not stats.added
    label = next(c for c in record.changes if c.field == "text")
    assert (label.old_value, label.new_value, label.round, label.annotation_id) == ("cat", "dog", 2, region_id)


def test_an_untrusted_round_counts_contradictions_but_drops_nothing() -> None:
    record = image(Region("object", (10, 10, 100, 100), "cat", SPECIALIST))

    def elsewhere(round_: int) -> ImageRecord:  # a box of its own each round: no two rounds vote for one box
        return image(Region("object", (100 + 20 * round_, 150, 110 + 20 * round_, 190), "dog", MODEL, score=0.3))

    for round_ in (1, 2, 3):
        stats = merge_round(record, elsewhere(round_), {"object"}, round_, SETTINGS, may_drop=False)
    assert [r.text for r in record.regions] == ["cat"] and record.regions[0].metrics[DISAGREEMENTS] == 3
    assert set(rules(record)) == {"refine_unconfirmed"} and not stats.removed
    merge_round(record, elsewhere(4), {"object"}, 4, SETTINGS, may_drop=True)
    assert record.regions == [] and record.dropped[-2].rule == "refine_disagreement"
    assert record.dropped[-2].value == 4.0
