"""Merging a refinement round's predictions into the annotations, as the FLD-5B engine's phase 3 does: the
model's predictions correct the annotations where they agree, vote, or consistently contradict them.

The policy, per image and per region kind the model was asked for:

- **agreement and fusion**: a prediction that overlaps an existing region (IoU >= ``match_iou``) and agrees on
  its text (same normalised label) confirms it: ``metrics["refine_agreements"]`` grows, the score rises to the
  prediction's where that is higher, and with ``fuse_boxes`` the box becomes the score-weighted fusion of the
  two (``refine/box_fusion.py``, ensemble-boxes' weighted boxes fusion; an unscored box weighs
  ``unscored_weight``), recorded as a :class:`~schemas.records.Change` of ``bbox`` with the old box.
- **votes**: a prediction the merge does not adopt is kept in ``dropped`` (rule ``refine_unconfirmed``, its round),
  so a later round can count it. A vote is such an earlier-round prediction, or a region of another source: one
  a filter dropped, or (for labels) another source's region over the same object.
- **relabel**: a region the model overlaps with another label, where that label has ``relabel_after_votes``
  votes (this round's prediction counts one), takes the new label, recorded as a change of ``text`` with the
  old label, and is fused with the prediction.
- **contradiction**: an existing region that the model does not reproduce (no overlap, or an overlap with a
  different label short of a relabel) gets ``metrics["refine_disagreements"] += 1``; once that reaches
  ``drop_after_disagreements`` it is dropped with the rule ``refine_disagreement`` (kept in ``dropped``),
  but only while the model is trusted (``may_drop``): the engine trusts a round when the previous round's
  agreement rate reached ``min_agreement_to_drop``. Measured at the tiny bench scale: a model that agreed
  with 8% of the boxes removed 30 of 38 in its second round and AP fell from 0.19 to 0.06.
- **no verdict**: where the model predicted nothing of a kind in an image, its originals of that kind are
  left alone and counted as ``unverified`` (a silent or under-trained model must not erase annotations;
  ``silence_contradicts`` turns that off).
- **new**: a prediction that overlaps no remaining region (including one that takes the place of a region
  dropped for disagreement this round) is added with ``provenance.round = k`` when its score is at least
  ``min_new_score``, or when it has ``add_after_votes`` votes (itself and earlier rounds' or other sources'
  boxes of its label over it: Florence-2's generation gives no score, so this is how its boxes are added),
  fused with its votes and recorded as a change ``added``. ``add_unscored`` adds every unscored prediction
  at once (off: on the tiny bench, adding them all took AP from 0.19 to 0.12).
- **captions**: a predicted caption replaces the current one of its granularity only when it survived the
  text filter (the predictions went through the same filters) and its quality is higher; the old one is
  dropped with the rule ``refine_replaced`` and ``by`` naming the new caption, and the change of ``text`` is
  recorded. The old caption's phrases are re-grounded: a phrase that occurs in the new caption moves to it
  (same regions, new span, a change ``phrase``); one that does not is dropped (``refine_replaced``); the
  phrases the model grounded in the new caption come with it.
Pure functions over records; nothing is overwritten without a Drop or a Change record.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from refine.box_fusion import fuse_boxes
from schemas.bounds import Fraction, PositiveInt
from schemas.boxes import boxes_of, iou_matrix
from schemas.metrics import REFINE_AGREEMENTS as AGREEMENTS
from schemas.metrics import REFINE_DISAGREEMENTS as DISAGREEMENTS
from schemas.records import Change, Drop, ImageRecord, Phrase, Region, Text

MERGE_STAGE = "refine_merge"
UNCONFIRMED = "refine_unconfirmed"
BUCKETS = ("confirmed", "fused", "added", "relabelled", "removed", "changed", "unverified")
# A fused box that moves by less than this (pixels, any side) is left as it was: no change worth recording.
MIN_MOVE = 0.5


@dataclass(frozen=True)
class MergeSettings:
    match_iou: Fraction = 0.5
    drop_after_disagreements: PositiveInt = 2
    min_new_score: Fraction = 0.5
    add_unscored: bool = False
    replace_captions: bool = True
    silence_contradicts: bool = False
    min_agreement_to_drop: Fraction = 0.5
    fuse_boxes: bool = True
    unscored_weight: Fraction = 0.5
    add_after_votes: PositiveInt = 2
    relabel_after_votes: PositiveInt = 2


@dataclass
class MergeStats:
    """Per-round changes, per annotation type."""

    confirmed: dict[str, int] = field(default_factory=dict)
    fused: dict[str, int] = field(default_factory=dict)
    added: dict[str, int] = field(default_factory=dict)
    relabelled: dict[str, int] = field(default_factory=dict)
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
            **{bucket: getattr(self, bucket) for bucket in BUCKETS},
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


def _set_round(annotation: Text | Region | Phrase, round_: int) -> None:
    annotation.provenance = replace(annotation.provenance, round=round_)


@dataclass(frozen=True)
class Vote:
    """A box that speaks for a label: an earlier round's unadopted prediction or another source's region.
    ``key`` is (source, round): one vote per source and round, however many boxes it gave."""

    region: Region
    key: tuple[str, int]


def votes_of(record: ImageRecord, kind: str, round_: int) -> list[Vote]:
    """The dropped regions of ``kind`` that count as votes in round ``round_``: predictions of earlier rounds
    the merge did not adopt, and regions other stages dropped (a filter's low-confidence box is a second
    source); never what the merge itself removed or what this round predicted."""
    votes = []
    for drop in record.dropped:
        if drop.annotation_type != "region":
            continue
        if drop.stage == MERGE_STAGE and not (drop.rule == UNCONFIRMED and drop.round < round_):
            continue
        region = drop.restore()
        if isinstance(region, Region) and region.kind == kind:
            votes.append(Vote(region, (region.provenance.source, region.provenance.round)))
    return votes


def supporting(
    box: Sequence[float], label: str, votes: Sequence[Vote], match_iou: float, own: tuple[str, int]
) -> list[Vote]:
    """The votes for ``label`` over ``box`` (IoU >= ``match_iou``), one per (source, round), ``own`` excluded."""
    found: dict[tuple[str, int], Vote] = {}
    if not votes:
        return []
    ious = iou_matrix(np.asarray([box], dtype=np.float64), boxes_of([v.region for v in votes]))[0]
    for vote, iou in zip(votes, ious, strict=True):
        if iou >= match_iou and vote.key != own and _norm(vote.region.text) == _norm(label):
            found.setdefault(vote.key, vote)
    return list(found.values())


def _weight(region: Region, settings: MergeSettings) -> float:
    return settings.unscored_weight if region.score is None else float(region.score)


def fuse_into(
    record: ImageRecord, region: Region, others: Sequence[Region], round_: int, settings: MergeSettings, by: str | None
) -> bool:
    """Move ``region``'s box to the score-weighted fusion of it and ``others``, recording the change; a region
    with a quad (OCR) keeps its box, which must stay the quad's bounds. Whether the box moved."""
    if not settings.fuse_boxes or not others or region.quad is not None:
        return False
    boxes = [region.bbox, *(o.bbox for o in others)]
    weights = [_weight(region, settings), *(_weight(o, settings) for o in others)]
    fused = fuse_boxes(boxes, weights, record.width, record.height, settings.match_iou)
    if max(abs(a - b) for a, b in zip(fused, region.bbox, strict=True)) < MIN_MOVE:
        return False
    record.changes.append(Change.of(region, "bbox", region.bbox, fused, stage=MERGE_STAGE, round=round_, by=by))
    region.bbox = fused
    return True


def _keep_vote(record: ImageRecord, candidate: Region, votes: int, settings: MergeSettings) -> None:
    """Keep a prediction the merge did not adopt, so a later round can count it as a vote."""
    record.dropped.append(
        Drop.of(candidate, stage=MERGE_STAGE, rule=UNCONFIRMED, value=votes, threshold=settings.add_after_votes)
    )


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
        for candidate in candidates:
            _set_round(candidate, round_)
        votes = votes_of(record, kind, round_)
        ious = iou_matrix(boxes_of(originals), boxes_of(candidates))
        used: set[int] = set()
        confirmed: set[int] = set()
        for i, original in enumerate(originals):
            # First every same-label agreement (greedy, best overlap first), so no relabel takes a confirmation.
            if not candidates:
                continue
            order = [int(j) for j in np.argsort(-ious[i])]
            match = next(
                (
                    j
                    for j in order
                    if ious[i, j] >= settings.match_iou
                    and j not in used
                    and _norm(candidates[j].text) == _norm(original.text)
                ),
                None,
            )
            if match is not None:
                used.add(match)
                confirmed.add(i)
                stats.compared += 1
                _confirm(record, original, candidates[match], round_, settings, stats)
        for i, original in enumerate(originals):
            if i in confirmed:
                continue
            if not candidates and not settings.silence_contradicts:
                stats.count("unverified", kind)
                continue
            stats.compared += 1
            order = [int(j) for j in np.argsort(-ious[i])] if candidates else []
            overlapping = [j for j in order if ious[i, j] >= settings.match_iou]
            other = [j for j in overlapping if _norm(candidates[j].text) != _norm(original.text)]
            if other and _relabel(record, original, candidates[other[0]], originals, votes, round_, settings):
                used.add(other[0])
                stats.count("relabelled", kind)
                continue
            original.metrics[DISAGREEMENTS] = original.metrics.get(DISAGREEMENTS, 0.0) + 1
            if may_drop and original.metrics[DISAGREEMENTS] >= settings.drop_after_disagreements:
                free = [j for j in overlapping if j not in used]
                by = candidates[free[0]].id if free else None
                record.drop(
                    original,
                    stage=MERGE_STAGE,
                    rule="refine_disagreement",
                    value=original.metrics[DISAGREEMENTS],
                    threshold=settings.drop_after_disagreements,
                    by=by,
                )
                stats.count("removed", kind)
        kept = [o for o in originals if any(o is r for r in record.regions)]
        kept_ious = iou_matrix(boxes_of(kept), boxes_of(candidates))
        for j, candidate in enumerate(candidates):
            if j in used:
                continue
            over = [o for o, iou in zip(kept, kept_ious[:, j], strict=True) if iou >= settings.match_iou]
            if over:
                # Over a region still there: a label the model proposed for it (a vote for a later relabel), or
                # a duplicate of one it confirmed.
                if all(_norm(o.text) != _norm(candidate.text) for o in over):
                    _keep_vote(record, candidate, 1, settings)
                continue
            _add_or_keep(record, candidate, votes, round_, settings, stats)
    return stats


def _confirm(
    record: ImageRecord, original: Region, prediction: Region, round_: int, settings: MergeSettings, stats: MergeStats
) -> None:
    """``prediction`` agrees with ``original``: count it, fuse the boxes, raise the score."""
    original.metrics[AGREEMENTS] = original.metrics.get(AGREEMENTS, 0.0) + 1
    if fuse_into(record, original, [prediction], round_, settings, by=prediction.id):
        stats.count("fused", original.kind)
    if prediction.score is not None and (original.score or 0.0) < prediction.score:
        original.score = prediction.score
        stats.count("changed", original.kind)
    stats.count("confirmed", original.kind)


def _relabel(
    record: ImageRecord,
    original: Region,
    prediction: Region,
    originals: Sequence[Region],
    votes: Sequence[Vote],
    round_: int,
    settings: MergeSettings,
) -> bool:
    """Give ``original`` the label of ``prediction`` (over it) if that label has ``relabel_after_votes`` votes:
    the prediction, earlier rounds' predictions, and other sources' regions over the same object."""
    others = [
        Vote(r, (r.provenance.source, r.provenance.round))
        for r in originals
        if r is not original and r.provenance.source != original.provenance.source
    ]
    own = (prediction.provenance.source, round_)
    support = supporting(original.bbox, prediction.text, [*votes, *others], settings.match_iou, own)
    if 1 + len(support) < settings.relabel_after_votes:
        return False
    fuse_into(record, original, [prediction], round_, settings, by=prediction.id)
    record.changes.append(
        Change.of(original, "text", original.text, prediction.text, stage=MERGE_STAGE, round=round_, by=prediction.id)
    )
    original.text = prediction.text
    original.metrics.pop(DISAGREEMENTS, None)
    original.metrics[AGREEMENTS] = original.metrics.get(AGREEMENTS, 0.0) + 1
    return True


def _add_or_keep(
    record: ImageRecord,
    candidate: Region,
    votes: Sequence[Vote],
    round_: int,
    settings: MergeSettings,
    stats: MergeStats,
) -> None:
    """A prediction over no remaining region: added when confident or voted for (fused with its votes), else
    kept as a vote for later rounds."""
    support = supporting(
        candidate.bbox, candidate.text, votes, settings.match_iou, (candidate.provenance.source, round_)
    )
    confident = settings.add_unscored if candidate.score is None else candidate.score >= settings.min_new_score
    if not confident and 1 + len(support) < settings.add_after_votes:
        _keep_vote(record, candidate, 1 + len(support), settings)
        return
    by = ",".join(v.region.id for v in support) or None
    if support and settings.fuse_boxes and candidate.quad is None:
        weights = [_weight(candidate, settings), *(_weight(v.region, settings) for v in support)]
        boxes = [candidate.bbox, *(v.region.bbox for v in support)]
        candidate.bbox = fuse_boxes(boxes, weights, record.width, record.height, settings.match_iou)
    record.regions.append(candidate)
    record.changes.append(Change.of(candidate, "added", None, candidate.bbox, stage=MERGE_STAGE, round=round_, by=by))
    stats.count("added", candidate.kind)


_WORD = r"(?<!\w){}(?!\w)"


def find_phrase(text: str, phrase: str) -> int | None:
    """Where ``phrase`` occurs in ``text`` as whole words (case-insensitive), or None."""
    found = re.search(_WORD.format(re.escape(phrase.strip())), text, flags=re.IGNORECASE) if phrase.strip() else None
    return None if found is None else found.start()


def reground(record: ImageRecord, old: Text, new: Text, round_: int, stats: MergeStats) -> None:
    """Move ``old``'s phrases to ``new`` where their words occur in it (same regions, the new span, a change
    ``phrase`` recorded); drop the others (rule ``refine_replaced``)."""
    for phrase in [p for p in record.phrases if p.text_id == old.id]:
        start = find_phrase(new.text, phrase.phrase)
        if start is None:
            record.drop(phrase, stage=MERGE_STAGE, rule="refine_replaced", by=new.id)
            stats.count("removed", "phrase")
            continue
        end = start + len(phrase.phrase.strip())
        moved = Phrase(new.id, start, end, new.text[start:end], phrase.regions, phrase.provenance, phrase.score)
        record.phrases[record.phrases.index(phrase)] = moved
        before = {"id": phrase.id, "text_id": old.id, "start": phrase.start, "end": phrase.end}
        after = {"id": moved.id, "text_id": new.id, "start": start, "end": end}
        record.changes.append(Change.of(moved, "phrase", before, after, stage=MERGE_STAGE, round=round_, by=new.id))
        stats.count("changed", "phrase")


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
        _set_round(new, round_)
        if not current:
            stats.count("added", "text")
            record.changes.append(Change.of(new, "added", None, new.text, stage=MERGE_STAGE, round=round_))
        elif settings.replace_captions and caption_quality(new) > caption_quality(current[0]):
            old, old_quality = current[0], caption_quality(current[0])
            reground(record, old, new, round_, stats)
            record.drop(
                old,
                stage=MERGE_STAGE,
                rule="refine_replaced",
                value=old_quality,
                threshold=caption_quality(new),
                by=new.id,
            )
            record.changes.append(
                Change.of(new, "text", old.text, new.text, stage=MERGE_STAGE, round=round_, by=old.id)
            )
            stats.count("changed", "text")
        else:
            continue
        record.texts.append(new)
        for phrase in predicted_phrases:
            if phrase.text_id == new.id:
                _set_round(phrase, round_)
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
