"""Table 2/3 statistics over rows and the side-by-side comparison with the paper."""

from __future__ import annotations

import pytest

from filters.statistics import PAPER_REFERENCE, compute_statistics, format_paper_comparison, measure_rows
from filters.text_analysis import TextAnalyzer
from schemas.records import GroundedRegion, ImageRecord, Phrase, Provenance, Region, Text, TextAnalysis
from schemas.validation import validate_record

SOURCE = Provenance("captioner", "blip")


def _row(texts: list[Text], regions: int = 0, phrases_on: Text | None = None, phrases: int = 0) -> dict:
    record = ImageRecord("img", "file:///img.jpg", 100, 100, "jpeg", texts=texts)
    record.regions = [Region("object", (0, 0, 10 + i, 10), "dog", SOURCE, score=0.9) for i in range(regions)]
    if phrases_on is not None:
        box = [GroundedRegion((0, 0, 5, 5))]
        record.phrases = [Phrase(phrases_on.id, i, i + 1, "x", box, SOURCE) for i in range(phrases)]
    return record.to_row()


def _analysed(granularity: str, text: str, **measures) -> Text:
    return Text(granularity, text, SOURCE, analysis=TextAnalysis(**measures))


def test_averages_per_granularity_regions_and_phrases_per_image() -> None:
    a = _analysed("brief", "a", num_tokens=6, objects=["w", "b"], attributes=["red"], actions=["ride"],
                  object_complexity=2.5, action_complexity=2.0)  # fmt: skip
    b = _analysed("brief", "b", num_tokens=10, objects=["x", "y", "z", "q"], object_complexity=3.5)
    detailed = _analysed("detailed", "c", num_tokens=30, proper_nouns=["Paris"])
    rows = [
        _row([a], regions=3, phrases_on=a, phrases=4),
        _row([b, detailed], regions=5, phrases_on=detailed, phrases=2),
    ]
    stats = compute_statistics(rows)
    brief = stats.by_granularity["brief"]
    assert (stats.images, stats.regions_per_image, stats.regions_by_kind_per_image) == (2, 4.0, {"object": 4.0})
    assert (brief.texts, brief.avg_tokens, brief.avg_objects, brief.avg_attributes, brief.avg_actions) == (
        2, 8.0, 3.0, 0.5, 0.5)  # fmt: skip
    # Pooled over tokens, as the paper computes it: (2 x 2.5 + 4 x 3.5) / 6 objects; 1 x 2.0 / 1 action.
    assert (brief.object_complexity, brief.action_complexity) == (pytest.approx(19 / 6), 2.0)
    assert brief.grounded_regions_per_text == 2.0  # 4 one-box phrases over the 2 brief texts
    assert stats.by_granularity["detailed"].grounded_regions_per_text == 2.0
    assert stats.by_granularity["detailed"].avg_proper_nouns == 1.0
    assert stats.by_granularity["more_detailed"].texts == 0


def test_unanalysed_texts_are_counted_or_analysed_on_request() -> None:
    rows = [_row([Text("brief", "A woman rides a red bicycle", SOURCE)])]
    assert compute_statistics(rows).by_granularity["brief"].unanalysed == 1
    brief = compute_statistics(rows, analyzer=TextAnalyzer()).by_granularity["brief"]
    assert (brief.unanalysed, brief.avg_objects, brief.avg_actions) == (0, 2.0, 1.0)


def test_comparison_prints_ours_beside_the_paper() -> None:
    text = _analysed("brief", "a", num_tokens=8, objects=["a", "b", "c"])
    report = format_paper_comparison(compute_statistics([_row([text], regions=2)]))
    tokens_line = next(line for line in report.splitlines() if line.startswith("avg tokens"))
    assert tokens_line.split()[2:5] == ["8.00", "7.95", "1.01"]
    regions_line = next(line for line in report.splitlines() if line.startswith("regions per image"))
    assert regions_line.split()[3:6] == ["2.00", "5.42", "0.37"]
    assert tokens_line.split()[5:8] == ["-", "31.65", "-"]  # no detailed texts: nothing measured
    assert PAPER_REFERENCE["more_detailed"]["avg_tokens"] == pytest.approx(70.53)


def _hand_counted_rows() -> list[dict]:
    """Two images counted by hand (see test_statistics_match_the_hand_count)."""
    one = ImageRecord("1" * 64, "file:///1.jpg", 100, 100, "jpeg")
    brief_1 = _analysed("brief", "A dog chases a red ball", num_tokens=6, objects=["dog", "ball"], attributes=["red"],
                        actions=["chase"], object_complexity=2.0, action_complexity=2.0)  # fmt: skip
    detailed = _analysed("detailed", "x" * 40, num_tokens=30, objects=["a", "b", "c", "d"],
                         proper_nouns=["Paris"], object_complexity=4.0)  # fmt: skip
    one.texts = [brief_1, detailed]
    one.regions = [
        Region("object", (0, 0, 10, 10), "dog", SOURCE, score=0.9),
        Region("object", (0, 0, 20, 10), "tennis ball", SOURCE, score=0.9),
        Region("region_caption", (0, 0, 10, 10), "a small brown dog", SOURCE),
        Region("ocr_line", (0, 0, 30, 5), "OPEN 24 HOURS", SOURCE, score=0.9),
        Region("ocr_word", (0, 0, 10, 5), "OPEN", SOURCE, score=0.9),
        Region("proposal", (0, 0, 50, 50), "", SOURCE),
    ]
    one.phrases = [
        Phrase(brief_1.id, 0, 5, "A dog", [GroundedRegion((0, 0, 10, 10))], SOURCE),
        Phrase(brief_1.id, 13, 23, "a red ball", [GroundedRegion((0, 0, 5, 5)), GroundedRegion((5, 5, 9, 9))], SOURCE),
    ]
    two = ImageRecord("2" * 64, "file:///2.jpg", 100, 100, "jpeg")
    brief_2 = _analysed("brief", "Two cats", num_tokens=2, objects=["cat"], attributes=["two"], object_complexity=1.0)
    two.texts = [brief_2]
    two.regions = [Region("dense_caption", (0, 0, 10, 10), "a cat sleeping on a sofa", SOURCE)]
    for record in (one, two):
        validate_record(record)
    return [one.to_row(), two.to_row()]


def test_statistics_match_the_hand_count() -> None:
    stats = compute_statistics(_hand_counted_rows())
    brief, detailed = stats.by_granularity["brief"], stats.by_granularity["detailed"]
    assert (brief.texts, brief.avg_tokens, brief.avg_objects, brief.avg_attributes, brief.avg_actions) == (
        2,
        4.0,
        1.5,
        1.0,
        0.5,
    )  # (6 + 2) / 2 tokens, (2 + 1) / 2 objects, (1 + 1) / 2 attributes, 1 / 2 actions
    assert brief.object_complexity == pytest.approx((2 * 2.0 + 1 * 1.0) / 3)  # degrees of 3 objects, pooled
    assert brief.action_complexity == 2.0
    assert (brief.grounded_regions, brief.grounded_regions_per_text) == (3, 1.5)  # 1 + 2 boxes over 2 brief texts
    assert brief.avg_tokens_per_grounded_region == pytest.approx((2 + 3 * 2) / 3)  # "A dog" once, "a red ball" twice
    assert (detailed.avg_objects, detailed.avg_proper_nouns) == (4.0, 1.0)  # Paris is not an object
    # Region-text: object and dense-caption boxes (2 + 1 over 2 images); OCR, proposals and region captions not.
    assert (stats.region_text_regions, stats.regions_per_image) == (3, 1.5)
    assert stats.region_text_tokens == {"phrase": 1.5, "brief": pytest.approx((4 + 6) / 2)}


def test_measures_that_cannot_be_computed_say_why() -> None:
    stats = compute_statistics(_hand_counted_rows())
    detailed, more = stats.by_granularity["detailed"], stats.by_granularity["more_detailed"]
    assert detailed.value("grounded_regions_per_text") is None
    assert "no phrase of a detailed text is grounded" in detailed.missing["grounded_regions_per_text"]
    assert detailed.missing["action_complexity"] == "no actions in the detailed texts"
    assert more.value("avg_tokens") is None and more.missing["avg_tokens"] == "no more_detailed texts in this version"
    report = format_paper_comparison(stats)
    assert "  more_detailed: avg tokens, grounded regions per text," in report
    assert "no more_detailed texts in this version" in report


def test_unanalysed_texts_make_the_text_measures_missing_not_zero() -> None:
    stats = compute_statistics([_row([Text("brief", "A woman rides a red bicycle", SOURCE)])])
    brief = stats.by_granularity["brief"]
    assert brief.value("avg_objects") is None
    assert brief.missing["avg_objects"] == "none of the 1 brief texts was analysed (no spacy_text filter ran)"


def test_the_comparison_counts_annotations_per_type() -> None:
    stats = compute_statistics(_hand_counted_rows())
    rows = {(r.column, r.measure): r.ours for r in measure_rows(stats)}
    assert (rows[("brief", "text annotations")], rows[("brief", "grounded regions")]) == (2.0, 3.0)
    assert rows[("region-text", "region-text regions")] == 3.0
    report = format_paper_comparison(stats)
    assert next(line for line in report.splitlines() if line.startswith("grounded regions (phrases)")).split()[3:] == [
        "3", "(2)", "0", "(0)", "0", "(0)"]  # fmt: skip
    assert next(line for line in report.splitlines() if line.startswith("region-text regions")).split()[-1] == "3"
