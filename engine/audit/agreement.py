"""Agreement between specialists, and between specialists and the refined model, by IoU-matched boxes.

For each region kind in each image, boxes of two sources are matched greedily by IoU (highest
first, each box at most once, IoU >= ``threshold``). A matched pair agrees on its label when the
texts are equal ignoring case. Regions suppressed by NMS count as their source's output: NMS
removes them because another source found the same thing, which is agreement.
Refined-model regions (round > 0) are matched against all round-0 regions of the kind.
Texts of one granularity from two sources (or a refinement round and the specialists) are compared
by the Jaccard overlap of their lower-cased word sets.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from schemas.boxes import boxes_of, iou_matrix
from schemas.records import ImageRecord, Region

IOU_THRESHOLD = 0.5
WORD = re.compile(r"\w+")
SPECIALISTS = "specialists (round 0)"


def greedy_match(ious: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Pairs (i, j, iou), highest IoU first, each row and column used once."""
    pairs = []
    if ious.size == 0:
        return pairs
    order = np.argsort(-ious, axis=None)
    used_rows, used_cols = set(), set()
    for flat in order:
        i, j = divmod(int(flat), ious.shape[1])
        if ious[i, j] < threshold:
            break
        if i in used_rows or j in used_cols:
            continue
        used_rows.add(i)
        used_cols.add(j)
        pairs.append((i, j, float(ious[i, j])))
    return pairs


@dataclass
class PairAgreement:
    """Totals for one (kind, source A, source B) pair over the images where both annotated that kind."""

    images: int = 0
    boxes_a: int = 0
    boxes_b: int = 0
    matched: int = 0
    same_label: int = 0
    iou_sum: float = 0.0

    @property
    def recall_a(self) -> float:
        """Share of A's boxes that B also found."""
        return self.matched / self.boxes_a if self.boxes_a else 0.0

    @property
    def recall_b(self) -> float:
        return self.matched / self.boxes_b if self.boxes_b else 0.0

    @property
    def mean_iou(self) -> float:
        return self.iou_sum / self.matched if self.matched else 0.0

    @property
    def label_agreement(self) -> float:
        return self.same_label / self.matched if self.matched else 0.0


@dataclass
class TextAgreement:
    """Totals for one (granularity, source A, source B) pair over images where both wrote such a text."""

    images: int = 0
    jaccard_sum: float = 0.0

    @property
    def mean_jaccard(self) -> float:
        return self.jaccard_sum / self.images if self.images else 0.0


def word_jaccard(a: str, b: str) -> float:
    """|A ∩ B| / |A ∪ B| of the lower-cased word sets (punctuation ignored); 1.0 for two empty texts."""
    words_a, words_b = set(WORD.findall(a.lower())), set(WORD.findall(b.lower()))
    union = words_a | words_b
    return len(words_a & words_b) / len(union) if union else 1.0


def source_label(source: str, round_: int) -> str:
    return f"{source} (round {round_})" if round_ > 0 else source


class AgreementCollector:
    """Feed records with :meth:`add`; :attr:`pairs` ``[(kind, a, b)]`` holds the totals.

    A specialist that ran on an image (its name is in the row's ``stages``; provenance sources are
    stage names) but found nothing of a kind there still counts: the other side's boxes are then
    unmatched. Pairs are reported only for sources that produced the kind somewhere in the version,
    so an OCR engine and a face detector are never compared.
    """

    def __init__(self, threshold: float = IOU_THRESHOLD) -> None:
        self.threshold = threshold
        self._pairs: dict[tuple[str, str, str], PairAgreement] = defaultdict(PairAgreement)
        self.texts: dict[tuple[str, str, str], TextAgreement] = defaultdict(TextAgreement)
        self.produced: set[tuple[str, str]] = set()

    @property
    def pairs(self) -> dict[tuple[str, str, str], PairAgreement]:
        return {
            (kind, a, b): totals
            for (kind, a, b), totals in self._pairs.items()
            if (a == SPECIALISTS or (kind, a) in self.produced) and (kind, b) in self.produced
        }

    def add(self, record: ImageRecord) -> None:
        regions = list(record.regions)
        for drop in record.dropped:
            if drop.annotation_type == "region" and "nms" in f"{drop.stage}/{drop.rule}".lower():
                regions.append(drop.restore())  # type: ignore[arg-type]
        by_kind_source: dict[str, dict[str, list[Region]]] = defaultdict(lambda: defaultdict(list))
        for region in regions:
            by_kind_source[region.kind][source_label(region.provenance.source, region.provenance.round)].append(region)
        ran = set(record.stages)
        for kind, sources in by_kind_source.items():
            self.produced.update((kind, source) for source in sources)
            specialists = sorted({s for s in sources if "(round " not in s} | ran)
            for a, b in combinations(specialists, 2):
                if a in sources or b in sources:
                    self._compare(kind, a, sources.get(a, []), b, sources.get(b, []))
            base = [r for s in specialists for r in sources.get(s, [])]
            for refined in sorted(s for s in sources if "(round " in s):
                if base:
                    self._compare(kind, SPECIALISTS, base, refined, sources[refined])
        self._compare_texts(record)

    def _compare_texts(self, record: ImageRecord) -> None:
        by_granularity: dict[str, dict[str, str]] = defaultdict(dict)
        for text in record.texts:
            by_granularity[text.granularity].setdefault(
                source_label(text.provenance.source, text.provenance.round), text.text
            )
        for granularity, sources in by_granularity.items():
            names = sorted(sources)
            for a, b in combinations(names, 2):
                totals = self.texts[(granularity, a, b)]
                totals.images += 1
                totals.jaccard_sum += word_jaccard(sources[a], sources[b])

    def _compare(self, kind: str, a: str, regions_a: list[Region], b: str, regions_b: list[Region]) -> None:
        totals = self._pairs[(kind, a, b)]
        totals.images += 1
        totals.boxes_a += len(regions_a)
        totals.boxes_b += len(regions_b)
        for i, j, iou in greedy_match(iou_matrix(boxes_of(regions_a), boxes_of(regions_b)), self.threshold):
            totals.matched += 1
            totals.iou_sum += iou
            totals.same_label += regions_a[i].text.strip().lower() == regions_b[j].text.strip().lower()
