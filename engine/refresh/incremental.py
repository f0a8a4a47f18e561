"""Incremental refresh by stage: which stages an already-annotated image must run again, and how.

Every row records the fingerprint of each stage that ran on it (``stages``: name -> fingerprint).
Against the current pipeline, a row is one of:

- **exact**: its fingerprints equal the pipeline's. It is carried over untouched.
- **refilter**: every specialist is fresh (same name, same fingerprint) but a filter was changed,
  added or removed. Every drop a filter made is restored (``Drop.restore()``), filter errors and
  fingerprints are removed, and all filter stages run again, in order, without reading pixels.
  All filters rerun, not only the changed one, because filters see each other's output (NMS
  after a confidence threshold keeps different boxes when the threshold moves).
- **reannotate**: some specialist is stale. A specialist is stale when its fingerprint differs or
  is missing, or when it ``requires`` an annotation type that a stale specialist ``produces``
  (so grounding reruns after its captioner changed). A stage the row recorded that the pipeline
  no longer has is *removed*: its annotations go, and since we cannot know what it produced,
  every specialist that requires anything is stale too (unless the removed stage is known to be a
  filter). The row loses the annotations of stale and removed specialists (by
  ``provenance.source``), gets back what filters and stale specialists dropped, and then runs
  the stale specialists (with pixels) and all filters; fresh specialists are skipped.

A stage that edits annotations made by others (masks added to phrases, metrics on regions)
must set those fields rather than append to them, so running it again is idempotent. Stage
errors are not retried by themselves; ``--full`` recomputes everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from engine.config.registry import FILTERS, SPECIALISTS
from schemas.records import ImageRecord, Phrase, Region, Text


class Level(IntEnum):
    """How much of a previously annotated row must run again (lower is less work)."""

    EXACT = 0
    REFILTER = 1
    REANNOTATE = 2


@dataclass(frozen=True)
class StageSpec:
    """What the refresh rule needs to know of one configured stage."""

    name: str
    kind: str
    fingerprint: str
    requires: frozenset[str] = frozenset()
    produces: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RowPlan:
    level: Level
    stale: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()


class StagePlan:
    """The current pipeline's stages, and the rule that compares a row's recorded fingerprints to them."""

    def __init__(self, stages: Sequence[StageSpec], known_filters: Iterable[str] = ()) -> None:
        self.stages = list(stages)
        self.fingerprints = {s.name: s.fingerprint for s in self.stages}
        self.specialists = [s for s in self.stages if s.kind == SPECIALISTS]
        self.filter_names = frozenset(s.name for s in self.stages if s.kind == FILTERS)
        self.known_filters = frozenset(known_filters) | self.filter_names

    def classify(self, recorded: Mapping[str, str]) -> RowPlan:
        if dict(recorded) == self.fingerprints:
            return RowPlan(Level.EXACT)
        removed = frozenset(recorded) - frozenset(self.fingerprints)
        unknown_outputs = bool(removed - self.known_filters)
        stale: set[str] = set()
        stale_types: set[str] = set()
        for spec in self.specialists:
            if (
                recorded.get(spec.name) != spec.fingerprint
                or spec.requires & stale_types
                or (unknown_outputs and spec.requires)
            ):
                stale.add(spec.name)
                stale_types |= spec.produces
        level = Level.REANNOTATE if stale else Level.REFILTER
        return RowPlan(level, frozenset(stale), removed)

    def strip(self, record: ImageRecord, plan: RowPlan) -> None:
        """Undo, in place, what the stages that will run again (and removed stages) did to ``record``."""
        fresh = {s.name for s in self.specialists} - plan.stale
        gone = plan.stale | plan.removed
        kept_drops = []
        present = {a.id for a in (*record.texts, *record.regions, *record.phrases)}
        for drop in record.dropped:
            if drop.stage in fresh:
                kept_drops.append(drop)
                continue
            annotation = drop.restore()
            if annotation.provenance.source in gone or annotation.id in present:
                continue
            present.add(annotation.id)
            _collection(record, annotation).append(annotation)
        record.dropped = kept_drops
        record.texts = [t for t in record.texts if t.provenance.source not in gone]
        record.regions = [r for r in record.regions if r.provenance.source not in gone]
        text_ids = {t.id for t in record.texts}
        record.phrases = [p for p in record.phrases if p.provenance.source not in gone and p.text_id in text_ids]
        record.errors = [e for e in record.errors if e.stage in fresh]
        record.stages = {name: value for name, value in record.stages.items() if name in fresh}


def _collection(record: ImageRecord, annotation: Text | Region | Phrase) -> list[Any]:
    return {Text: record.texts, Region: record.regions, Phrase: record.phrases}[type(annotation)]
