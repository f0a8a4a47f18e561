"""Merging a refinement round's predictions into the annotations, as the FLD-5B engine's phase 3 does.

The policy, per image and per region kind the model was asked for:

- **agreement**: a prediction that overlaps an existing region (IoU >= ``match_iou``) and agrees on its
  text (same normalised label) confirms it: ``metrics["refine_agreements"]`` grows, and the score rises to
  the prediction's where that is higher. Nothing is replaced.
- **contradiction**: an existing region that the model does not reproduce (no overlap, or an overlap with a
  different label) gets ``metrics["refine_disagreements"] += 1``; once that reaches
  ``drop_after_disagreements`` it is dropped with the rule ``refine_disagreement`` (kept in ``dropped``),
  but only while the model is trusted (``may_drop``): the engine trusts a round when the previous round's
  agreement rate reached ``min_agreement_to_drop``. Measured at the tiny bench scale: a model that agreed
  with 8% of the boxes removed 30 of 38 in its second round and AP fell from 0.19 to 0.06.
- **no verdict**: where the model predicted nothing of a kind in an image, its originals of that kind are
  left alone and counted as ``unverified`` (a silent or under-trained model must not erase annotations;
  ``silence_contradicts`` turns that off). Measured: at the tiny bench scale, counting silence as
  contradiction dropped every original box within two rounds (``bench/refine_quality.py``).
- **new**: a prediction that overlaps no remaining region (including one that takes the place of a region
  dropped for disagreement this round) is added with ``provenance.round = k`` when its score is at least
  ``min_new_score`` (Florence-2's generation gives no score: unscored predictions count as confident
  only if ``add_unscored``, off by default: on the tiny bench, adding them took AP from 0.19 to 0.12).
- **captions**: a predicted caption replaces the current one of its granularity only when it survived the
  text filter (the predictions went through the same filters) and its quality is higher; the old one is
  dropped with the rule ``refine_replaced`` and ``by`` naming the new caption. Phrases grounded in the old
  caption go with it (same rule); the phrases the model grounded in the new caption come with it.
Pure functions over records; nothing is overwritten without a Drop record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from schemas.bounds import Fraction, PositiveInt
from schemas.boxes import boxes_of, iou_matrix
from schemas.metrics import REFINE_AGREEMENTS as AGREEMENTS
from schemas.metrics import REFINE_DISAGREEMENTS as DISAGREEMENTS
from schemas.records import ImageRecord, Phrase, Region, Text

MERGE_STAGE = "refine_merge"
BUCKETS = ("confirmed", "added", "removed", "changed", "unverified")


@dataclass(frozen=True)
class MergeSettings:
    match_iou: Fraction = 0.5
    drop_after_disagreements: PositiveInt = 2
    min_new_score: Fraction = 0.5
    add_unscored: bool = False
    replace_captions: bool = True
    silence_contradicts: bool = False
    min_agreement_to_drop: Fraction = 0.5


@dataclass
class MergeStats:
    """Per-round changes, per annotation type."""

    confirmed: dict[str, int] = field(default_factory=dict)
    added: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    unverified: dict[str, int] = field(default_factory=dict)
    compared: int = 0

    def count(self, bucket: str, kind: str, n: int = 1) -> None:
        table = getattr(self, bucket)
        table[kind] = table.get(kind, 0) + n

    def add(self, other: MergeStats) -> None:
        for bucket in BUCKETS:
            for kind, n in getattr(other, bucket).items():
                self.count(bucket, kind, n)
        self.compared += other.compared

    @property
    def agreement_rate(self) -> float:
        return sum(self.confirmed.values()) / self.compared if self.compared else 0.0

    @classmethod
    def from_dict(cls, data: dict) -> MergeStats:
        return cls(
            **{bucket: dict(data.get(bucket, {})) for bucket in BUCKETS},
            compared=int(data.get("compared", 0)),
        )

    def to_dict(self) -> dict:
        return {
            "confirmed": self.confirmed,
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "unverified": self.unverified,
            "compared": self.compared,
            "agreement_rate": round(self.agreement_rate, 4),
        }


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def caption_quality(text: Text) -> float:
    """Score of a caption: its own score when a model gave one, else the measured object and action complexity."""
    if text.score is not None:
        return float(text.score)
    if text.analysis is None:
        return 0.0
    return text.analysis.object_complexity + text.analysis.action_complexity + 0.1 * len(text.analysis.objects)


def merge_regions(
    record: ImageRecord,
    predicted: list[Region],
    kinds: set[str],
    round_: int,
    settings: MergeSettings,
    may_drop: bool = True,
) -> MergeStats:
    stats = MergeStats()
    for kind in sorted(kinds):
        originals = [r for r in record.regions if r.kind == kind]
        candidates = [r for r in predicted if r.kind == kind]
        ious = iou_matrix(boxes_of(originals), boxes_of(candidates))
        used: set[int] = set()
        for i, original in enumerate(originals):
            if not candidates and not settings.silence_contradicts:
                stats.count("unverified", kind)
                continue
            stats.compared += 1
            order = [int(j) for j in np.argsort(-ious[i])] if candidates else []
            overlapping = [j for j in order if ious[i, j] >= settings.match_iou and j not in used]
            match = next((j for j in overlapping if _norm(candidates[j].text) == _norm(original.text)), None)
            if match is not None:
                used.add(match)
                original.metrics[AGREEMENTS] = original.metrics.get(AGREEMENTS, 0.0) + 1
                if candidates[match].score is not None and (original.score or 0.0) < candidates[match].score:
                    original.score = candidates[match].score
                    stats.count("changed", kind)
                stats.count("confirmed", kind)
                continue
            original.metrics[DISAGREEMENTS] = original.metrics.get(DISAGREEMENTS, 0.0) + 1
            if may_drop and original.metrics[DISAGREEMENTS] >= settings.drop_after_disagreements:
                by = candidates[overlapping[0]].id if overlapping else None
                record.drop(
                    original,
                    stage=MERGE_STAGE,
                    rule="refine_disagreement",
                    value=original.metrics[DISAGREEMENTS],
                    threshold=settings.drop_after_disagreements,
                    by=by,
                )
                stats.count("removed", kind)
        kept = np.array([any(o is r for r in record.regions) for o in originals], dtype=bool)
        for j, candidate in enumerate(candidates):
            # A prediction over a region still there confirmed or contradicted it; it is not a new one.
            if j in used or (kept & (ious[:, j] >= settings.match_iou)).any():
                continue
            confident = settings.add_unscored if candidate.score is None else candidate.score >= settings.min_new_score
            if confident:
                candidate.provenance = type(candidate.provenance)(
                    candidate.provenance.source, candidate.provenance.model, round_
                )
                record.regions.append(candidate)
                stats.count("added", kind)
    return stats


def merge_captions(
    record: ImageRecord,
    predicted: list[Text],
    round_: int,
    settings: MergeSettings,
    predicted_phrases: Sequence[Phrase] = (),
) -> MergeStats:
    stats = MergeStats()
    for new in predicted:
        current = [t for t in record.texts if t.granularity == new.granularity]
        stats.compared += len(current)
        if current and _norm(current[0].text) == _norm(new.text):
            stats.count("confirmed", "text")
            continue
        new.provenance = type(new.provenance)(new.provenance.source, new.provenance.model, round_)
        if not current:
            stats.count("added", "text")
        elif settings.replace_captions and caption_quality(new) > caption_quality(current[0]):
            old, old_quality = current[0], caption_quality(current[0])
            for phrase in [p for p in record.phrases if p.text_id == old.id]:
                record.drop(phrase, stage=MERGE_STAGE, rule="refine_replaced", by=new.id)
            record.drop(
                old,
                stage=MERGE_STAGE,
                rule="refine_replaced",
                value=old_quality,
                threshold=caption_quality(new),
                by=new.id,
            )
            stats.count("changed", "text")
        else:
            continue
        record.texts.append(new)
        for phrase in predicted_phrases:
            if phrase.text_id == new.id:
                phrase.provenance = type(phrase.provenance)(phrase.provenance.source, phrase.provenance.model, round_)
                record.phrases.append(phrase)
                stats.count("added", "phrase")
    return stats


def merge_round(
    record: ImageRecord,
    predicted: ImageRecord,
    kinds: set[str],
    round_: int,
    settings: MergeSettings,
    may_drop: bool = True,
) -> MergeStats:
    """Merge one image's round-``round_`` predictions (already filtered) into ``record`` in place;
    without ``may_drop`` contradictions are counted but nothing is dropped for them."""
    stats = merge_regions(record, list(predicted.regions), kinds, round_, settings, may_drop)
    stats.add(merge_captions(record, list(predicted.texts), round_, settings, list(predicted.phrases)))
    return stats
