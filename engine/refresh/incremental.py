"""Incremental refresh by stage: which stages an already-annotated image must run again, and how.

Every row records the fingerprint of each stage that ran on it (``stages``: name -> fingerprint). The
fingerprint a row records is what the stage computes and, where its place in the profile's order matters,
what it was given (:func:`stage_inputs`, folded by ``schemas.stage.stage_fingerprint``): a specialist after
filters records the fingerprints of those filters (it annotated what they kept), a filter the names of the
specialists before it (it judged their output). So adding, removing, changing or moving a filter changes the
recorded fingerprint of exactly the stages downstream of it. Against the current pipeline, a row is one of:

- **exact**: its fingerprints equal the pipeline's. It is carried over untouched.
- **refilter**: every specialist is fresh but a filter after the last specialist (a final filter) was
  changed, added or removed. That filter and the filters after it run again, without pixels, on the row
  with their drops restored (``ImageRecord.restore``: annotations, a dropped text's phrases, dropped masks);
  filters before it keep their drops (their input did not change). A known filter that was removed sat
  among the final filters (else a specialist after it would be stale), so all final filters run again.
- **reannotate**: some specialist is stale. A specialist is stale when its fingerprint differs or is
  missing (its own settings, or the filters that feed it), when it ``requires`` an annotation type that a
  stale specialist ``produces`` (so grounding reruns after its captioner changed), or when a filter before
  it runs again (its input changes). A filter runs again when it changed or anything before it runs again.
  A stage the row recorded that the pipeline no longer has is *removed*: its annotations go, and since we
  cannot know what it produced, every specialist that requires anything is stale too (unless the removed
  stage is known to be a filter). The row loses the annotations of stale and removed specialists (by
  ``provenance.source``), gets back what the rerunning stages dropped, and then runs the stale specialists
  (with pixels) and the rerunning filters; fresh stages are skipped. A fresh filter never runs on a row
  holding output of a specialist after it: every specialist after a rerunning filter is stale.

A stage that edits annotations made by others (masks added to phrases, metrics on regions)
must set those fields rather than append to them, so running it again is idempotent. Masks have no
source of their own: when a mask stage (one that ``produces`` masks) is stale, every mask is cleared and
every mask stage runs again.

A stage that failed on a row (a :class:`StageError` of it, under its current fingerprint: a transient error,
a worker that died) runs again on the next run as if stale, with the same cascade, until it has failed
``max_stage_retries`` + 1 times. The row counts the failures: its earlier errors of a retried stage are kept,
the stage runner adds the new one (or, when the stage succeeds, drops them all: ``stage_runner``). Errors of
a stage whose fingerprint changed go with its old work. ``--full`` recomputes everything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from engine.config.registry import FILTERS, SPECIALISTS
from schemas.fingerprint import canonical_hash
from schemas.records import MASK_DROP, MASK_METRICS, Drop, ImageRecord

# The annotation type of mask stages (SAM, GrabCut): they write masks onto regions others made.
MASKS = "masks"
# How often a stage that failed on an image is tried again on later runs (``refresh.max_stage_retries``).
MAX_STAGE_RETRIES = 3


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
    """``stale``: specialists to run again; ``removed``: recorded stages the pipeline no longer has;
    ``refilter``: filters to run again; ``retried``: the stages among them that run again because they failed
    (their earlier errors stay on the row, to count the failures)."""

    level: Level
    stale: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()
    refilter: frozenset[str] = frozenset()
    retried: frozenset[str] = frozenset()


def failure_counts(errors: Iterable[Mapping[str, str]] | None) -> dict[str, int]:
    """How many errors each stage left on a row (its ``errors`` cell as read from Arrow)."""
    return dict(Counter(str(error["stage"]) for error in errors or []))


def stage_inputs(stages: Sequence[tuple[str, str, str]]) -> dict[str, str]:
    """What each stage of ``stages`` ((name, kind, own fingerprint), in run order) is given, for its recorded
    fingerprint: a specialist after filters, a hash of those filters' names and fingerprints; a filter, a hash
    of the names of the specialists before it; "" where nothing comes before."""
    inputs: dict[str, str] = {}
    filters: list[list[str]] = []
    specialists: list[str] = []
    for name, kind, fingerprint in stages:
        if kind == SPECIALISTS:
            inputs[name] = canonical_hash({"filters": filters}) if filters else ""
            specialists.append(name)
        else:
            inputs[name] = canonical_hash({"specialists": specialists}) if specialists else ""
            filters.append([name, fingerprint])
    return inputs


class StagePlan:
    """The current pipeline's stages in run order, and the rule that compares a row's recorded fingerprints to them."""

    def __init__(
        self, stages: Sequence[StageSpec], known_filters: Iterable[str] = (), max_stage_retries: int = MAX_STAGE_RETRIES
    ) -> None:
        self.stages = list(stages)
        self.max_stage_retries = max_stage_retries
        self.fingerprints = {s.name: s.fingerprint for s in self.stages}
        self.specialists = [s for s in self.stages if s.kind == SPECIALISTS]
        self.filter_names = frozenset(s.name for s in self.stages if s.kind == FILTERS)
        self.known_filters = frozenset(known_filters) | self.filter_names
        last_specialist = max((i for i, s in enumerate(self.stages) if s.kind == SPECIALISTS), default=-1)
        self.final_filters = frozenset(s.name for s in self.stages[last_specialist + 1 :] if s.kind == FILTERS)
        self.mask_stages = frozenset(s.name for s in self.specialists if MASKS in s.produces)

    def classify(self, recorded: Mapping[str, str], failures: Mapping[str, int] | None = None) -> RowPlan:
        """What of a row must run again, from the fingerprints it recorded and how often each stage failed on
        it (:func:`failure_counts`)."""
        retried = self._retried(recorded, failures or {})
        if dict(recorded) == self.fingerprints and not retried:
            return RowPlan(Level.EXACT)
        removed = frozenset(recorded) - frozenset(self.fingerprints)
        stale, refilter = self._walk(recorded, removed, retried)
        if stale & self.mask_stages and self.mask_stages - stale:
            # Masks sit on other stages' regions, without a source of their own: a stale mask stage has every
            # mask cleared (strip), so every mask stage runs again.
            stale, refilter = self._walk(recorded, removed, retried | self.mask_stages)
        if removed & self.known_filters and not stale:
            refilter |= self.final_filters
        level = Level.REANNOTATE if stale else Level.REFILTER
        return RowPlan(level, frozenset(stale), removed, frozenset(refilter), retried)

    def _retried(self, recorded: Mapping[str, str], failures: Mapping[str, int]) -> frozenset[str]:
        """Stages that failed on the row under their current fingerprint, fewer than ``max_stage_retries`` + 1 times."""
        return frozenset(
            name
            for name, count in failures.items()
            if name in self.fingerprints
            and recorded.get(name) == self.fingerprints[name]
            and count <= self.max_stage_retries
        )

    def _walk(
        self, recorded: Mapping[str, str], removed: frozenset[str], forced: frozenset[str]
    ) -> tuple[set[str], set[str]]:
        """The stale specialists and the filters to run again, in run order (``forced`` stale anyway)."""
        unknown_outputs = bool(removed - self.known_filters)
        stale: set[str] = set()
        stale_types: set[str] = set()
        refilter: set[str] = set()
        for spec in self.stages:
            changed = recorded.get(spec.name) != spec.fingerprint or spec.name in forced
            if spec.kind == SPECIALISTS:
                if changed or spec.requires & stale_types or (unknown_outputs and spec.requires) or refilter:
                    stale.add(spec.name)
                    stale_types |= spec.produces
            elif changed or stale or refilter:
                refilter.add(spec.name)
        return stale, refilter

    def strip(self, record: ImageRecord, plan: RowPlan) -> None:
        """Undo, in place, what the stages that will run again (and removed stages) did to ``record``."""
        fresh = set(self.fingerprints) - plan.stale - plan.refilter
        gone = plan.stale | plan.removed
        record.texts = [t for t in record.texts if t.provenance.source not in gone]
        record.regions = [r for r in record.regions if r.provenance.source not in gone]
        record.phrases = [p for p in record.phrases if p.provenance.source not in gone]
        undone = [d for d in record.dropped if d.stage not in fresh]
        record.dropped = [d for d in record.dropped if d.stage in fresh]
        record.restore([d for d in undone if d.annotation_type == MASK_DROP or _source(d) not in gone])
        if plan.stale & self.mask_stages:
            _clear_masks(record)
        text_ids = {t.id for t in record.texts}
        record.phrases = [p for p in record.phrases if p.text_id in text_ids]
        record.errors = [e for e in record.errors if e.stage in fresh or e.stage in plan.retried]
        record.stages = {name: value for name, value in record.stages.items() if name in fresh}


def _source(drop: Drop) -> str:
    return drop.restore().provenance.source


def _clear_masks(record: ImageRecord) -> None:
    """Every mask and polygon, and the metrics that measured the masks, so the mask stages make them again."""
    for region in record.regions:
        region.mask, region.polygon = None, None
        for name in MASK_METRICS:
            region.metrics.pop(name, None)
    for phrase in record.phrases:
        for grounded in phrase.regions:
            grounded.mask, grounded.polygon = None, None
