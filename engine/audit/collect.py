"""One streaming pass over a version's records: counts, drops, scores, geometry, per-image densities.

Everything kept is bounded: counters, and reservoir samples (uniform over the whole pass) of drop
examples per rule, scores and box geometry, so a pass over any number of images holds little memory.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from engine.audit.reservoir import Reservoir
from schemas.records import MASK_DROP, Drop, ImageRecord

VALUES_PER_SERIES = 20_000


@dataclass(frozen=True)
class DropExample:
    image_id: str
    source_uri: str
    summary: str
    value: float | None
    threshold: float | None
    by: str | None


def drop_summary(drop: Drop) -> str:
    """A one-line description of a dropped annotation: its text and, for regions, its box."""
    if drop.annotation_type == MASK_DROP:
        return f"mask of region {drop.annotation_id} (the region kept its box)"
    try:
        data: dict[str, Any] = json.loads(drop.annotation)
    except json.JSONDecodeError:
        return drop.annotation_id
    text = data.get("text") or data.get("phrase") or ""
    source = (data.get("provenance") or {}).get("source", "?")
    box = data.get("bbox")
    where = f" at [{', '.join(f'{v:.0f}' for v in box)}]" if box else ""
    kind = data.get("kind") or data.get("granularity") or drop.annotation_type
    return f"{kind} {text!r}{where} from {source}"


@dataclass(frozen=True)
class ChangeExample:
    """One in-place change refinement made (``schemas.records.Change``), for the report."""

    image_id: str
    source_uri: str
    annotation: str
    old: str | None
    new: str | None
    round: int
    by: str | None


@dataclass
class AuditStats:
    """What one pass over the records measured."""

    images: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    by_source: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_round: Counter[tuple[str, int]] = field(default_factory=Counter)
    drops: Counter[str] = field(default_factory=Counter)
    drop_examples: dict[str, Reservoir[DropExample]] = field(default_factory=dict)
    drop_values: dict[str, Reservoir[float]] = field(default_factory=dict)
    drop_thresholds: dict[str, float] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    # In-place changes by refinement, per (field, round): boxes fused, labels changed, additions, phrases moved.
    changes: Counter[tuple[str, int]] = field(default_factory=Counter)
    change_examples: dict[str, Reservoir[ChangeExample]] = field(default_factory=dict)
    scores: dict[str, Reservoir[float]] = field(default_factory=dict)
    box_sizes: dict[str, Reservoir[float]] = field(default_factory=dict)
    box_centres: dict[str, Reservoir[tuple[float, float]]] = field(default_factory=dict)
    regions_per_image: Counter[int] = field(default_factory=Counter)
    phrases_per_image: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    images_without_annotations: int = 0

    def mean_per_image(self, histogram: Counter[int]) -> float:
        total = sum(histogram.values())
        return sum(k * n for k, n in histogram.items()) / total if total else 0.0


class StatsCollector:
    """Feed records with :meth:`add`; read :attr:`stats`."""

    def __init__(self, examples: int = 5, seed: int = 0) -> None:
        self.examples = examples
        self.seed = seed
        self.stats = AuditStats()

    def _series(self, table: dict[str, Reservoir[Any]], key: str) -> Reservoir[Any]:
        if key not in table:
            table[key] = Reservoir(VALUES_PER_SERIES, seed=self.seed + len(table))
        return table[key]

    def add(self, record: ImageRecord) -> None:
        stats = self.stats
        stats.images += 1
        if not (record.texts or record.regions or record.phrases):
            stats.images_without_annotations += 1
        for text in record.texts:
            self._count("text", text.granularity, text.provenance.source, text.provenance.round)
            if text.score is not None:
                self._series(stats.scores, f"text/{text.provenance.source}").add(float(text.score))
        area = float(record.width * record.height) or 1.0
        for region in record.regions:
            self._count("region", region.kind, region.provenance.source, region.provenance.round)
            if region.score is not None:
                self._series(stats.scores, f"{region.kind}/{region.provenance.source}").add(float(region.score))
            x0, y0, x1, y1 = region.bbox
            self._series(stats.box_sizes, region.kind).add(max(0.0, (x1 - x0) * (y1 - y0) / area) ** 0.5)
            centre = ((x0 + x1) / 2 / record.width, (y0 + y1) / 2 / record.height)
            self._series(stats.box_centres, region.kind).add(centre)
        stats.regions_per_image[len(record.regions)] += 1
        granularity_of = {t.id: t.granularity for t in record.texts}
        per_granularity: Counter[str] = Counter()
        for phrase in record.phrases:
            self._count("phrase", "grounded_phrase", phrase.provenance.source, phrase.provenance.round)
            per_granularity[granularity_of.get(phrase.text_id, "unknown")] += 1
            if phrase.score is not None:
                self._series(stats.scores, f"phrase/{phrase.provenance.source}").add(float(phrase.score))
        for granularity in {*granularity_of.values(), *per_granularity}:
            stats.phrases_per_image[granularity][per_granularity[granularity]] += 1
        for drop in record.dropped:
            rule = drop.key
            stats.drops[rule] += 1
            if drop.value is not None:
                self._series(stats.drop_values, rule).add(float(drop.value))
            if drop.threshold is not None:
                stats.drop_thresholds.setdefault(rule, float(drop.threshold))
            if rule not in stats.drop_examples:
                stats.drop_examples[rule] = Reservoir(self.examples, seed=self.seed + len(stats.drop_examples))
            examples = stats.drop_examples[rule]
            slot = examples.slot()
            if slot is not None:  # summarise (parse the dropped annotation) only what is kept
                summary = drop_summary(drop)
                example = DropExample(record.image_id, record.source_uri, summary, drop.value, drop.threshold, drop.by)
                examples.place(slot, example)
        for error in record.errors:
            stats.errors[error.stage] += 1
        for change in record.changes:
            stats.changes[(change.field, change.round)] += 1
            if change.field not in stats.change_examples:
                seed = self.seed + 1000 + len(stats.change_examples)
                stats.change_examples[change.field] = Reservoir(self.examples, seed=seed)
            examples = stats.change_examples[change.field]
            slot = examples.slot()
            if slot is not None:
                annotation = f"{change.annotation_type} {change.annotation_id}"
                example = ChangeExample(
                    record.image_id, record.source_uri, annotation, change.old, change.new, change.round, change.by
                )
                examples.place(slot, example)

    def _count(self, kind: str, subkind: str, source: str, round_: int) -> None:
        self.stats.by_type[kind] += 1
        self.stats.by_kind[f"{kind}/{subkind}"] += 1
        self.stats.by_source[(kind, source)] += 1
        self.stats.by_round[(kind, round_)] += 1
