"""The paper's Table 2 and 3 measures over annotated rows, and a side-by-side comparison with the paper.

Per granularity: average tokens, objects, attributes, actions and proper nouns per text, object and
action complexity (means of each text's values, as the text filter measured them), and grounded
phrases per image (over images that have a text of that granularity); overall: region-text
annotations per image. Texts without ``analysis`` (the text filter did not run) are analysed with
``analyzer`` when one is given, else left out of the text measures and counted as unanalysed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from schemas.records import GRANULARITIES, TextAnalysis

TEXT_MEASURES = (
    "avg_tokens",
    "avg_objects",
    "avg_attributes",
    "avg_actions",
    "avg_proper_nouns",
    "object_complexity",
    "action_complexity",
    "grounded_phrases_per_image",
)

# FLD-5B, Florence-2 paper Tables 2 and 3 (proper nouns are not reported there).
PAPER_REFERENCE: dict[str, dict[str, float]] = {
    "brief": {
        "avg_tokens": 7.95,
        "avg_objects": 3.23,
        "avg_attributes": 2.80,
        "avg_actions": 0.58,
        "object_complexity": 2.80,
        "action_complexity": 1.14,
        "grounded_phrases_per_image": 4.27,
    },
    "detailed": {
        "avg_tokens": 31.65,
        "avg_objects": 13.31,
        "avg_attributes": 7.27,
        "avg_actions": 4.21,
        "object_complexity": 4.00,
        "action_complexity": 3.63,
        "grounded_phrases_per_image": 10.25,
    },
    "more_detailed": {
        "avg_tokens": 70.53,
        "avg_objects": 28.06,
        "avg_attributes": 16.25,
        "avg_actions": 8.76,
        "object_complexity": 4.02,
        "action_complexity": 4.38,
        "grounded_phrases_per_image": 10.17,
    },
}
PAPER_REGIONS_PER_IMAGE = 5.42


@dataclass(slots=True)
class GranularityStatistics:
    texts: int = 0
    unanalysed: int = 0
    images: int = 0
    avg_tokens: float = 0.0
    avg_objects: float = 0.0
    avg_attributes: float = 0.0
    avg_actions: float = 0.0
    avg_proper_nouns: float = 0.0
    object_complexity: float = 0.0
    action_complexity: float = 0.0
    grounded_phrases_per_image: float = 0.0


@dataclass(slots=True)
class CorpusStatistics:
    images: int = 0
    regions_per_image: float = 0.0
    regions_by_kind_per_image: dict[str, float] = field(default_factory=dict)
    by_granularity: dict[str, GranularityStatistics] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _analysis(text: Mapping[str, Any], analyzer: Any) -> TextAnalysis | None:
    if text.get("analysis") is not None:
        return TextAnalysis.from_dict(text["analysis"])
    return analyzer.analyze([text["text"]])[0] if analyzer is not None else None


def compute_statistics(rows: Iterable[Mapping[str, Any]], analyzer: Any = None) -> CorpusStatistics:
    """Table 2/3 measures over annotation rows (``ImageRecord.to_row()`` dicts, as read from shards)."""
    sums = {g: dict.fromkeys(TEXT_MEASURES, 0.0) for g in GRANULARITIES}
    stats = CorpusStatistics(by_granularity={g: GranularityStatistics() for g in GRANULARITIES})
    regions_by_kind: dict[str, int] = {}
    for row in rows:
        stats.images += 1
        for region in row.get("regions") or []:
            regions_by_kind[region["kind"]] = regions_by_kind.get(region["kind"], 0) + 1
        granularity_of = {t["id"]: t["granularity"] for t in row.get("texts") or []}
        for granularity in set(granularity_of.values()):
            stats.by_granularity[granularity].images += 1
        for phrase in row.get("phrases") or []:
            if phrase["text_id"] in granularity_of:
                sums[granularity_of[phrase["text_id"]]]["grounded_phrases_per_image"] += 1
        for text in row.get("texts") or []:
            part, total = stats.by_granularity[text["granularity"]], sums[text["granularity"]]
            part.texts += 1
            analysis = _analysis(text, analyzer)
            if analysis is None:
                part.unanalysed += 1
                continue
            total["avg_tokens"] += analysis.num_tokens
            total["avg_objects"] += len(analysis.objects)
            total["avg_attributes"] += len(analysis.attributes)
            total["avg_actions"] += len(analysis.actions)
            total["avg_proper_nouns"] += len(analysis.proper_nouns)
            total["object_complexity"] += analysis.object_complexity
            total["action_complexity"] += analysis.action_complexity
    for granularity, part in stats.by_granularity.items():
        analysed = part.texts - part.unanalysed
        for measure, total in sums[granularity].items():
            denominator = part.images if measure == "grounded_phrases_per_image" else analysed
            setattr(part, measure, total / denominator if denominator else 0.0)
    if stats.images:
        stats.regions_per_image = sum(regions_by_kind.values()) / stats.images
        stats.regions_by_kind_per_image = {k: n / stats.images for k, n in sorted(regions_by_kind.items())}
    return stats


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_paper_comparison(stats: CorpusStatistics) -> str:
    """A plain-text table of our measures beside the paper's, per granularity, with ours/paper ratios."""
    header = f"{'measure':<28}" + "".join(f"{g:>27}" for g in GRANULARITIES)
    sub = f"{'':<28}" + "".join(f"{'ours':>9}{'paper':>9}{'ratio':>9}" for _ in GRANULARITIES)
    lines = [f"FLD-5B comparison over {stats.images} images (paper: Florence-2 Tables 2 and 3)", header, sub]
    texts = f"{'texts (unanalysed)':<28}"
    for g in GRANULARITIES:
        part = stats.by_granularity[g]
        texts += f"{f'{part.texts} ({part.unanalysed})':>27}"
    lines.append(texts)
    for measure in TEXT_MEASURES:
        line = f"{measure.replace('_', ' '):<28}"
        for g in GRANULARITIES:
            part = stats.by_granularity[g]
            measured = part.images if measure == "grounded_phrases_per_image" else part.texts - part.unanalysed
            ours = getattr(part, measure) if measured else None
            paper = PAPER_REFERENCE[g].get(measure)
            ratio = ours / paper if paper and ours is not None else None
            line += f"{_cell(ours):>9}{_cell(paper):>9}{_cell(ratio):>9}"
        lines.append(line)
    ratio = stats.regions_per_image / PAPER_REGIONS_PER_IMAGE
    lines.append(
        f"{'regions per image':<28}{_cell(stats.regions_per_image):>9}{_cell(PAPER_REGIONS_PER_IMAGE):>9}"
        f"{_cell(ratio):>9}"
    )
    if stats.regions_by_kind_per_image:
        kinds = ", ".join(f"{k} {v:.2f}" for k, v in stats.regions_by_kind_per_image.items())
        lines.append(f"{'  by kind':<28}{kinds}")
    return "\n".join(lines)
