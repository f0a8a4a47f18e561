"""The base of every filter: one method decides keep or drop; the base class does the rest once.

Like datatrove's ``BaseFilter``, a filter implements a single decision, :meth:`Filter.check` (one
annotation at a time) or :meth:`Filter.decide` (joint decisions over an image, such as NMS), and
returns a :class:`Verdict` naming the rule for each annotation to drop. Like Data-Juicer, a filter
that measures something first (:meth:`Filter.measure`, once per batch) keeps the measured value on
the annotation, so audits can re-threshold without recomputing. The base class applies the decision
to every record, writes each drop to ``record.dropped`` with stage, rule, value, threshold and
``by``, counts drops per rule, and implements the stage contract (:class:`schemas.stage.BaseStage`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

import numpy as np

from schemas.records import ImageRecord, Phrase, Region, Text
from schemas.stage import BaseStage, Resources, StageKind

Annotation = Text | Region | Phrase
Target = Literal["texts", "regions", "phrases"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why an annotation is dropped: the rule, the measured value, the threshold it crossed, and by whom.
    ``mask_only``: only the region's mask fails (SAM's quality measures, an empty GrabCut mask); the region
    keeps its box and loses its mask (:meth:`schemas.records.ImageRecord.drop_mask`)."""

    rule: str
    value: float | None = None
    threshold: float | None = None
    by: str | None = None
    mask_only: bool = False


def below(rule: str, value: float | None, minimum: float | None) -> Verdict | None:
    """A drop if ``value`` is below ``minimum`` (no drop when either is unset)."""
    if value is None or minimum is None or value >= minimum:
        return None
    return Verdict(rule, value, minimum)


def above(rule: str, value: float | None, maximum: float | None) -> Verdict | None:
    """A drop if ``value`` is above ``maximum`` (no drop when either is unset)."""
    if value is None or maximum is None or value <= maximum:
        return None
    return Verdict(rule, value, maximum)


def first_drop(*verdicts: Verdict | None) -> Verdict | None:
    """The first rule that drops, in the order the rules are listed."""
    return next((v for v in verdicts if v is not None), None)


def mask_only(verdict: Verdict | None) -> Verdict | None:
    """``verdict`` applied to the region's mask alone."""
    return None if verdict is None else replace(verdict, mask_only=True)


class Filter(BaseStage):
    """Base class of every filter stage.

    Subclasses set ``backend`` and ``Options`` (a frozen dataclass validated from the profile) and
    either ``targets`` with :meth:`check`, or override :meth:`decide`. ``measure`` and ``load`` are
    optional hooks; ``model_id`` names any model the filter uses (for the fingerprint). Filters need no
    pixels and hold no model, except those that load one (spaCy) and set ``holds_model``: they run in an
    actor pool, so it loads once per worker.
    """

    kind: ClassVar[StageKind] = "filters"
    targets: ClassVar[tuple[Target, ...]] = ()

    def __init__(self, name: str, options: Any, resources: Resources | None = None) -> None:
        super().__init__(name, options, resources)
        self.drop_counts: Counter[str] = Counter()

    # -- what a filter implements ------------------------------------------------------------
    def check(self, annotation: Any, record: ImageRecord) -> Verdict | None:
        """Keep (None) or drop (a :class:`Verdict`) one annotation of ``targets``."""
        raise NotImplementedError(f"{type(self).__name__} implements neither check() nor decide()")

    def decide(self, record: ImageRecord) -> Iterator[tuple[Annotation, Verdict]]:
        """The annotations of ``record`` to drop, with why; by default :meth:`check` on each target."""
        for target in self.targets:
            for annotation in getattr(record, target):
                verdict = self.check(annotation, record)
                if verdict is not None:
                    yield annotation, verdict

    def measure(self, records: list[ImageRecord]) -> None:
        """Compute and store statistics on the annotations of a whole batch before deciding."""

    # -- what the base class does once -------------------------------------------------------
    def process(self, records: list[ImageRecord], images: list[np.ndarray] | None) -> None:
        """Measure, decide and drop, recording every drop on its record."""
        self.setup()
        self.measure(records)
        for record in records:
            self.apply(record, self.decide(record))

    def apply(self, record: ImageRecord, drops: Iterable[tuple[Annotation, Verdict]]) -> None:
        """Drop each annotation (or a region's mask) with its verdict (decisions are collected first, then applied)."""
        for annotation, verdict in list(drops):
            reason = {"stage": self.name, "rule": verdict.rule, "value": verdict.value, "threshold": verdict.threshold}
            if verdict.mask_only:
                assert isinstance(annotation, Region), f"{self.name}: only a region has a mask to drop"
                record.drop_mask(annotation, **reason, by=verdict.by)
            else:
                record.drop(annotation, **reason, by=verdict.by)
            self.drop_counts[verdict.rule] += 1
