"""The score of a region whose model gave none: an explicit prior per source, never "better than everything".

Florence-2 writes boxes without a confidence, and refinement rounds (Florence-2 again) do too. A filter or a
merge that ranks regions needs a number for them: before this module, NMS ranked an unscored box as +inf, above
a detector box scored 0.95, and the confidence threshold skipped it. Here an unscored region of source ``s``
ranks as ``by_source[s]``, or ``default``; a scored region keeps its score. The NMS and confidence filters read
it (their ``unscored`` option) and refinement's merge can import :func:`effective_score` as well.

Default 0.5 for every unscored source: a model that reports no confidence counts as a middling detection,
below a confident detector box (0.9 and up: RT-DETR and DINO on a clear object) and above the object threshold
(0.3), so NMS keeps the scored box where both found the same object and the unscored box where it is alone.
Raise a source that is known to be precise (human labels merged in: ``import:coco: 1.0``), lower one that is
not, per profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_UNSCORED_PRIOR = 0.5


@dataclass(frozen=True)
class UnscoredPriors:
    """``by_source``: provenance source (stage name) -> the score its unscored regions rank with;
    ``default``: the score of unscored regions of any other source."""

    by_source: dict[str, float] = field(default_factory=dict)
    default: float = DEFAULT_UNSCORED_PRIOR

    def __post_init__(self) -> None:
        for source, prior in {**self.by_source, "default": self.default}.items():
            if not 0.0 <= prior <= 1.0:
                raise ValueError(f"unscored prior for {source!r} is {prior}; it must lie in [0, 1]")

    def prior(self, source: str) -> float:
        """The score an unscored region of ``source`` ranks with."""
        return self.by_source.get(source, self.default)


def effective_score(score: float | None, source: str, priors: UnscoredPriors) -> float:
    """``score`` where the model gave one, else the prior of ``source``."""
    return priors.prior(source) if score is None else float(score)
