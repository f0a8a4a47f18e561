"""The paper's Table 2 and Table 3 measures over annotated rows, as the paper defines them, beside the paper.

FLD-5B (Florence-2 paper) reports, per annotation type and text type, how many annotations there are and
how long their texts are (Table 2), and how rich the image-level texts are (Table 3). Each measure below is
computed the way those tables count, with the paper's value next to its definition; a measure this version
cannot give (no texts of a granularity, no grounding, texts the text filter never analysed) is reported as
missing with the reason, never as 0. Texts without ``analysis`` are analysed with ``analyzer`` when one is
given, else left out of the Table 3 measures and counted as unanalysed.

Tokens of image-level texts are the text filter's (spaCy tokens, punctuation excluded). Tokens of region
texts and phrases are runs of letters and digits (:func:`word_count`), which equals spaCy's non-punctuation
token count on plain English phrases; the audit does not run spaCy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from schemas.records import GRANULARITIES, TextAnalysis

# Table 2, text rows: "#Avg Tokens" of image-level texts, spaCy tokens per text.
PAPER_AVG_TOKENS = {"brief": 7.95, "detailed": 31.65, "more_detailed": 70.53}
# Table 2, text-phrase-region rows: "#Avg Regions", grounded regions per text annotation (#Regions over
# #Image Annotations of that text type: 1,007M / 235M brief texts = 4.27).
PAPER_GROUNDED_REGIONS_PER_TEXT = {"brief": 4.27, "detailed": 10.25, "more_detailed": 10.17}
# Table 2, region-text rows: "#Avg Regions" per image, 681M regions over 126M images. The paper's region-text
# regions are the detector's boxes, each with its texts; OCR lines and words and unlabelled proposals are not
# among them.
PAPER_REGIONS_PER_IMAGE = 5.42
# Table 3 (semantic coverage), per text: objects, attributes, actions; complexity of objects and actions.
PAPER_SEMANTICS: dict[str, dict[str, float]] = {
    "brief": {
        "avg_objects": 3.23,
        "avg_attributes": 2.80,
        "avg_actions": 0.58,
        "object_complexity": 2.80,
        "action_complexity": 1.14,
    },
    "detailed": {
        "avg_objects": 13.31,
        "avg_attributes": 7.27,
        "avg_actions": 4.21,
        "object_complexity": 4.00,
        "action_complexity": 3.63,
    },
    "more_detailed": {
        "avg_objects": 28.06,
        "avg_attributes": 16.25,
        "avg_actions": 8.76,
        "object_complexity": 4.02,
        "action_complexity": 4.38,
    },
}
# Both tables, per granularity (proper nouns and regional tokens: no paper value in our reference, see README).
PAPER_REFERENCE: dict[str, dict[str, float]] = {
    g: {
        "avg_tokens": PAPER_AVG_TOKENS[g],
        **PAPER_SEMANTICS[g],
        "grounded_regions_per_text": PAPER_GROUNDED_REGIONS_PER_TEXT[g],
    }
    for g in GRANULARITIES
}

# Region kinds the paper counts as region-text regions: labelled boxes. A region caption is a second text on an
# object's box (the paper counts the same 681M boxes once per text type), so it is a region text, not a region.
REGION_TEXT_KINDS = ("object", "dense_caption")
NOT_REGION_TEXT_KINDS = ("ocr_line", "ocr_word", "proposal")
# Region texts by the paper's two region-text types: "phrase" (a category or noun phrase) and "brief" (a caption).
REGION_TEXT_TYPES = {"object": "phrase", "region_caption": "brief", "dense_caption": "brief"}

# Measures per granularity, in table order: (name, label, measured over).
TEXT_MEASURES = (
    "avg_tokens",
    "grounded_regions_per_text",
    "avg_tokens_per_grounded_region",
    "avg_objects",
    "avg_attributes",
    "avg_actions",
    "avg_proper_nouns",
    "object_complexity",
    "action_complexity",
)
# Measures over analysed texts (Table 3 and the tokens of Table 2, which the text filter counts).
ANALYSED = frozenset(TEXT_MEASURES) - {"grounded_regions_per_text", "avg_tokens_per_grounded_region"}

_WORD = re.compile(r"[^\W_]+")


def word_count(text: str) -> int:
    """Runs of letters and digits in ``text`` ("a man's T-shirt": 5, as spaCy's non-punctuation tokens)."""
    return len(_WORD.findall(text))


@dataclass(slots=True)
class GranularityStatistics:
    """Texts of one granularity: counts, and the measures (0.0 where :attr:`missing` names a reason)."""

    texts: int = 0
    unanalysed: int = 0
    images: int = 0
    grounded_phrases: int = 0
    grounded_regions: int = 0
    avg_tokens: float = 0.0
    grounded_regions_per_text: float = 0.0
    avg_tokens_per_grounded_region: float = 0.0
    avg_objects: float = 0.0
    avg_attributes: float = 0.0
    avg_actions: float = 0.0
    avg_proper_nouns: float = 0.0
    object_complexity: float = 0.0
    action_complexity: float = 0.0
    missing: dict[str, str] = field(default_factory=dict)

    def value(self, measure: str) -> float | None:
        """The measure, or None where it cannot be computed (:attr:`missing` says why)."""
        return None if measure in self.missing else getattr(self, measure)


@dataclass(slots=True)
class CorpusStatistics:
    images: int = 0
    regions_per_image: float = 0.0
    regions_by_kind_per_image: dict[str, float] = field(default_factory=dict)
    region_text_regions: int = 0
    region_text_tokens: dict[str, float] = field(default_factory=dict)
    by_granularity: dict[str, GranularityStatistics] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Sums:
    """Running totals for one granularity."""

    tokens: int = 0
    objects: int = 0
    attributes: int = 0
    actions: int = 0
    proper_nouns: int = 0
    object_degrees: float = 0.0
    action_degrees: float = 0.0
    phrase_tokens: int = 0


def _analysis(text: Mapping[str, Any], analyzer: Any) -> TextAnalysis | None:
    if text.get("analysis") is not None:
        return TextAnalysis.from_dict(text["analysis"])
    return analyzer.analyze([text["text"]])[0] if analyzer is not None else None


class _Accumulator:
    def __init__(self, analyzer: Any) -> None:
        self.analyzer = analyzer
        self.stats = CorpusStatistics(by_granularity={g: GranularityStatistics() for g in GRANULARITIES})
        self.sums = {g: _Sums() for g in GRANULARITIES}
        self.regions_by_kind: dict[str, int] = {}
        self.region_tokens: dict[str, list[int]] = {t: [0, 0] for t in sorted(set(REGION_TEXT_TYPES.values()))}

    def add(self, row: Mapping[str, Any]) -> None:
        self.stats.images += 1
        for region in row.get("regions") or []:
            self.regions_by_kind[region["kind"]] = self.regions_by_kind.get(region["kind"], 0) + 1
            text_type = REGION_TEXT_TYPES.get(region["kind"])
            if text_type is not None and region["text"].strip():
                self.region_tokens[text_type][0] += word_count(region["text"])
                self.region_tokens[text_type][1] += 1
        texts = row.get("texts") or []
        granularity_of = {t["id"]: t["granularity"] for t in texts}
        for granularity in set(granularity_of.values()):
            self.stats.by_granularity[granularity].images += 1
        for phrase in row.get("phrases") or []:
            granularity = granularity_of.get(phrase["text_id"])
            if granularity is None or not phrase["regions"]:
                continue
            part = self.stats.by_granularity[granularity]
            part.grounded_phrases += 1
            part.grounded_regions += len(phrase["regions"])
            self.sums[granularity].phrase_tokens += word_count(phrase["phrase"]) * len(phrase["regions"])
        for text in texts:
            self._add_text(text)

    def _add_text(self, text: Mapping[str, Any]) -> None:
        part, total = self.stats.by_granularity[text["granularity"]], self.sums[text["granularity"]]
        part.texts += 1
        analysis = _analysis(text, self.analyzer)
        if analysis is None:
            part.unanalysed += 1
            return
        total.tokens += analysis.num_tokens
        total.objects += len(analysis.objects)
        total.attributes += len(analysis.attributes)
        total.actions += len(analysis.actions)
        total.proper_nouns += len(analysis.proper_nouns)
        # A text's complexity is the mean degree of its objects (actions): times their count, its total degree.
        total.object_degrees += analysis.object_complexity * len(analysis.objects)
        total.action_degrees += analysis.action_complexity * len(analysis.actions)

    def finish(self) -> CorpusStatistics:
        stats = self.stats
        for granularity, part in stats.by_granularity.items():
            self._finish_granularity(granularity, part, self.sums[granularity])
        if stats.images:
            # Table 2, region-text "#Avg Regions" (5.42): labelled boxes per image, OCR and proposals excluded.
            stats.region_text_regions = sum(self.regions_by_kind.get(k, 0) for k in REGION_TEXT_KINDS)
            stats.regions_per_image = stats.region_text_regions / stats.images
            stats.regions_by_kind_per_image = {k: n / stats.images for k, n in sorted(self.regions_by_kind.items())}
            if not stats.region_text_regions:
                stats.missing["regions_per_image"] = "no object or dense-caption regions in this version"
        else:
            stats.missing["regions_per_image"] = "no images"
        # Table 2, region-text "#Avg Regional Tokens": words per region text, per text type.
        for text_type, (tokens, count) in self.region_tokens.items():
            if count:
                stats.region_text_tokens[text_type] = tokens / count
            else:
                kinds = ", ".join(k for k, t in REGION_TEXT_TYPES.items() if t == text_type)
                stats.missing[f"region_tokens_{text_type}"] = f"no {kinds} regions with a text"
        return stats

    @staticmethod
    def _finish_granularity(granularity: str, part: GranularityStatistics, total: _Sums) -> None:
        analysed = part.texts - part.unanalysed
        if part.texts == 0:
            part.missing = dict.fromkeys(TEXT_MEASURES, f"no {granularity} texts in this version")
            return
        if analysed == 0:
            reason = f"none of the {part.texts} {granularity} texts was analysed (no spacy_text filter ran)"
            part.missing.update(dict.fromkeys(ANALYSED, reason))
        else:
            # Table 2/3 "#Avg Tokens" (7.95 / 31.65 / 70.53) and Table 3 counts per text (objects 3.23 / 13.31 /
            # 28.06, attributes 2.80 / 7.27 / 16.25, actions 0.58 / 4.21 / 8.76); proper nouns are not objects.
            part.avg_tokens = total.tokens / analysed
            part.avg_objects = total.objects / analysed
            part.avg_attributes = total.attributes / analysed
            part.avg_actions = total.actions / analysed
            part.avg_proper_nouns = total.proper_nouns / analysed
            # Table 3 complexity (objects 2.80 / 4.00 / 4.02, actions 1.14 / 3.63 / 4.38): the degree of every
            # object (action) token in the undirected dependency graph, averaged over all such tokens of the
            # corpus, not a mean of per-text means.
            if total.objects:
                part.object_complexity = total.object_degrees / total.objects
            else:
                part.missing["object_complexity"] = f"no objects in the {granularity} texts"
            if total.actions:
                part.action_complexity = total.action_degrees / total.actions
            else:
                part.missing["action_complexity"] = f"no actions in the {granularity} texts"
        # Table 2, text-phrase-region "#Avg Regions" (4.27 / 10.25 / 10.17): grounded regions per text
        # annotation, over every text of the granularity (a text without phrases counts with 0).
        part.grounded_regions_per_text = part.grounded_regions / part.texts
        if part.grounded_regions:
            # Table 2, text-phrase-region "#Avg Regional Tokens": words of the phrase, per grounded region.
            part.avg_tokens_per_grounded_region = total.phrase_tokens / part.grounded_regions
        else:
            reason = f"no phrase of a {granularity} text is grounded (no grounding stage ran, or filters dropped all)"
            part.missing["grounded_regions_per_text"] = reason
            part.missing["avg_tokens_per_grounded_region"] = reason


def compute_statistics(rows: Iterable[Mapping[str, Any]], analyzer: Any = None) -> CorpusStatistics:
    """Table 2/3 measures over annotation rows (``ImageRecord.to_row()`` dicts, as read from shards)."""
    accumulator = _Accumulator(analyzer)
    for row in rows:
        accumulator.add(row)
    return accumulator.finish()


@dataclass(frozen=True)
class MeasureRow:
    """One line of the comparison: ``ours`` None where ``missing`` says why it cannot be computed."""

    column: str
    measure: str
    ours: float | None
    paper: float | None
    missing: str = ""

    @property
    def ratio(self) -> float | None:
        return self.ours / self.paper if self.ours is not None and self.paper else None


REGION_TEXT_COUNT = "region-text regions"
LABELS = {
    "avg_tokens": "avg tokens",
    "grounded_regions_per_text": "grounded regions per text",
    "avg_tokens_per_grounded_region": "avg tokens per grounded region",
    "avg_objects": "avg objects",
    "avg_attributes": "avg attributes",
    "avg_actions": "avg actions",
    "avg_proper_nouns": "avg proper nouns",
    "object_complexity": "object complexity",
    "action_complexity": "action complexity",
}


def measure_rows(stats: CorpusStatistics) -> list[MeasureRow]:
    """Every measure as a row: per granularity, then the region-text measures (column ``region-text``)."""
    rows = []
    for granularity in GRANULARITIES:
        part = stats.by_granularity[granularity]
        # Table 2's annotation counts ("#Image Annotations", "#Regions"): corpus-size numbers, no paper ratio.
        rows.append(MeasureRow(granularity, "text annotations", float(part.texts), None))
        rows.append(MeasureRow(granularity, "grounded regions", float(part.grounded_regions), None))
        for measure in TEXT_MEASURES:
            paper = PAPER_REFERENCE[granularity].get(measure)
            rows.append(
                MeasureRow(granularity, LABELS[measure], part.value(measure), paper, part.missing.get(measure, ""))
            )
    rows.append(MeasureRow("region-text", REGION_TEXT_COUNT, float(stats.region_text_regions), None))
    missing = stats.missing.get("regions_per_image", "")
    ours = None if missing else stats.regions_per_image
    rows.append(MeasureRow("region-text", "regions per image", ours, PAPER_REGIONS_PER_IMAGE, missing))
    for text_type in sorted(set(REGION_TEXT_TYPES.values()), reverse=True):
        reason = stats.missing.get(f"region_tokens_{text_type}", "")
        value = stats.region_text_tokens.get(text_type)
        rows.append(MeasureRow("region-text", f"avg tokens per region text ({text_type})", value, None, reason))
    return rows


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_paper_comparison(stats: CorpusStatistics) -> str:
    """A plain-text table of our measures beside the paper's, per granularity, with ours/paper ratios, then
    the region-text measures and the measures this version cannot give, each with its reason."""
    rows = measure_rows(stats)
    by_granularity = {(r.column, r.measure): r for r in rows}
    header = f"{'measure':<32}" + "".join(f"{g:>27}" for g in GRANULARITIES)
    sub = f"{'':<32}" + "".join(f"{'ours':>9}{'paper':>9}{'ratio':>9}" for _ in GRANULARITIES)
    lines = [f"FLD-5B comparison over {stats.images} images (paper: Florence-2 Tables 2 and 3)", header, sub]
    texts = f"{'texts (unanalysed)':<32}"
    for g in GRANULARITIES:
        part = stats.by_granularity[g]
        texts += f"{f'{part.texts} ({part.unanalysed})':>27}"
    lines.append(texts)
    grounded = f"{'grounded regions (phrases)':<32}"
    for g in GRANULARITIES:
        part = stats.by_granularity[g]
        grounded += f"{f'{part.grounded_regions} ({part.grounded_phrases})':>27}"
    lines.append(grounded)
    for measure in TEXT_MEASURES:
        line = f"{LABELS[measure]:<32}"
        for g in GRANULARITIES:
            row = by_granularity[(g, LABELS[measure])]
            line += f"{_cell(row.ours):>9}{_cell(row.paper):>9}{_cell(row.ratio):>9}"
        lines.append(line)
    for row in rows:
        if row.column == "region-text" and row.measure == REGION_TEXT_COUNT:
            lines.append(f"{row.measure:<32}{stats.region_text_regions:>9}")
        elif row.column == "region-text":
            lines.append(f"{row.measure:<32}{_cell(row.ours):>9}{_cell(row.paper):>9}{_cell(row.ratio):>9}")
    if stats.regions_by_kind_per_image:
        kinds = ", ".join(f"{k} {v:.2f}" for k, v in stats.regions_by_kind_per_image.items())
        lines.append(f"{'  all kinds per image':<32}{kinds}")
        lines.append(
            f"{'':<32}(the paper counts {' and '.join(REGION_TEXT_KINDS)}; not {', '.join(NOT_REGION_TEXT_KINDS)})"
        )
    lines += missing_lines(rows)
    return "\n".join(lines)


def missing_lines(rows: list[MeasureRow]) -> list[str]:
    """The measures that cannot be computed, grouped by reason: ``  column: measures: reason``."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        if row.missing:
            grouped.setdefault((row.column, row.missing), []).append(row.measure)
    if not grouped:
        return []
    lines = ["cannot be computed for this version:"]
    lines += [f"  {column}: {', '.join(measures)}: {reason}" for (column, reason), measures in grouped.items()]
    return lines
