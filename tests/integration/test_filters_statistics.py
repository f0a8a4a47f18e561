"""Table 2/3 statistics over rows and the side-by-side comparison with the paper."""

from __future__ import annotations

import pytest

from filters.statistics import PAPER_REFERENCE, compute_statistics, format_paper_comparison
from filters.text_analysis import TextAnalyzer
from schemas.records import GroundedRegion, ImageRecord, Phrase, Provenance, Region, Text, TextAnalysis

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
    assert (brief.object_complexity, brief.action_complexity) == (3.0, 1.0)
    assert brief.grounded_phrases_per_image == 2.0  # 4 phrases over the 2 images with a brief text
    assert stats.by_granularity["detailed"].grounded_phrases_per_image == 2.0
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
