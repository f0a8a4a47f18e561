"""Phrase grounding as in FLD-5B: noun phrases of each image text, grounded to boxes by a zero-shot detector.

``PhraseGrounding`` is the shared part; a backend only loads its model and scores boxes against phrases:
OWLv2 here (``hf_grounding``), Grounding DINO in ``specialists/grounding_dino.py``.

Phrases are the text filter's noun-phrase spans (``Text.analysis.noun_phrases``) when it already ran,
else spaCy noun chunks; blacklisted phrases (``filters/blacklists/phrases.txt``) are never grounded.
Every distinct phrase of an image is one text query; all images of a batch go through the model
once. A phrase's regions are its boxes scoring at least ``min_score``, de-duplicated by NMS, best
``max_regions`` kept; a phrase with none is not written. Each occurrence becomes a text-phrase-region
triplet with its character span, and the phrase score is its best box's.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from schemas.bounds import Fraction, PositiveInt
from schemas.boxes import box_nms
from schemas.records import GroundedRegion, ImageRecord, Phrase, Text
from specialists.hf_model import HfModelOptions, HfSpecialist


@dataclass(frozen=True)
class GroundingOptions(HfModelOptions):
    """``min_score``: OWLv2's sigmoid score for a box to ground a phrase (0.1, the threshold of OWLv2's model
    card examples; the confidence filter applies the profile's grounding threshold later).
    ``nms_iou``: boxes of one phrase overlapping a better one by more than this are the same object."""

    model: str = "google/owlv2-base-patch16-ensemble"
    granularities: tuple[str, ...] = ("brief", "detailed", "more_detailed")
    min_score: Fraction = 0.1
    max_regions: PositiveInt = 4
    nms_iou: Fraction = 0.5
    max_phrases: PositiveInt = 32  # distinct phrases queried per image
    max_query_tokens: PositiveInt = 16  # OWLv2's text encoder has 16 positions
    blacklist_files: tuple[str, ...] = ()  # more phrase lists, added to the bundled one


@dataclass(frozen=True, slots=True)
class PhraseSpan:
    """One occurrence of a phrase in a text."""

    text: Text
    start: int
    end: int

    @property
    def phrase(self) -> str:
        return self.text.text[self.start : self.end]


def ground_boxes(
    scores: np.ndarray, boxes: np.ndarray, min_score: float, nms_iou: float, max_regions: int
) -> list[tuple[tuple[float, ...], float]]:
    """The boxes of one query: score >= ``min_score``, greedy NMS at ``nms_iou``, best ``max_regions`` first."""
    keep = np.flatnonzero(scores >= min_score)
    if keep.size == 0:
        return []
    kept_boxes, kept_scores = boxes[keep], scores[keep]
    survivors = np.flatnonzero(box_nms(kept_boxes, kept_scores, nms_iou).by < 0)
    order = survivors[np.argsort(-kept_scores[survivors], kind="stable")][:max_regions]
    return [(tuple(float(v) for v in kept_boxes[i]), float(kept_scores[i])) for i in order]


class PhraseGrounding(HfSpecialist):
    """Phrases grounded by a transformers zero-shot detector; subclasses implement ``load_model`` and ``detect``."""

    produces: ClassVar[frozenset[str]] = frozenset({"phrases"})
    requires: ClassVar[frozenset[str]] = frozenset({"texts"})
    Options: ClassVar[type] = GroundingOptions

    def load(self) -> None:
        from filters.blacklist import Blacklist
        from filters.spacy_model import load_spacy

        super().load()
        self.nlp = load_spacy(disable=("ner",))
        self.blacklist = Blacklist.configured("phrases", self.options.blacklist_files, nlp=self.nlp)

    def phrase_spans(self, record: ImageRecord) -> list[PhraseSpan]:
        """Noun-phrase occurrences of the record's texts at the configured granularities, blacklist applied."""
        texts = [t for t in record.texts if t.granularity in self.options.granularities]
        spans: list[PhraseSpan] = []
        unparsed = [t for t in texts if t.analysis is None or not t.analysis.noun_phrases]
        for text in texts:
            if text.analysis is not None and text.analysis.noun_phrases:
                spans += [PhraseSpan(text, start, end) for start, end in text.analysis.noun_phrases]
        for text, doc in zip(unparsed, self.nlp.pipe([t.text for t in unparsed]), strict=True):
            spans += [PhraseSpan(text, chunk.start_char, chunk.end_char) for chunk in doc.noun_chunks]
        spans = [s for s in spans if s.phrase.strip()]
        blocked = self.blacklist.matches_many([s.phrase for s in spans])
        return [span for span, bad in zip(spans, blocked, strict=True) if not bad]

    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        jobs = []
        for i, record in enumerate(records):
            spans = self.phrase_spans(record)
            queries = list(dict.fromkeys(s.phrase.strip().lower() for s in spans))[: self.options.max_phrases]
            if queries:
                jobs.append((i, spans, queries))
        if not jobs:
            return
        scores, boxes = self.detect([images[i] for i, _, _ in jobs], [q for _, _, q in jobs])
        provenance = self.provenance()
        for (i, spans, queries), image_scores, image_boxes in zip(jobs, scores, boxes, strict=True):
            record = records[i]
            clip = np.array([record.width, record.height] * 2, dtype=np.float64)
            image_boxes = np.clip(image_boxes, 0, clip)
            # A box under a pixel a side (after clipping to the image) grounds nothing.
            sized = (image_boxes[:, 2] - image_boxes[:, 0] >= 1) & (image_boxes[:, 3] - image_boxes[:, 1] >= 1)
            image_scores = np.where(sized[:, None], image_scores, -np.inf)
            grounded = {
                query: ground_boxes(
                    image_scores[:, q],
                    image_boxes,
                    self.options.min_score,
                    self.options.nms_iou,
                    self.options.max_regions,
                )
                for q, query in enumerate(queries)
            }
            for span in spans:
                found = grounded.get(span.phrase.strip().lower())
                if not found:
                    continue
                regions = [GroundedRegion(box, score=score) for box, score in found]
                record.phrases.append(
                    Phrase(span.text.id, span.start, span.end, span.phrase, regions, provenance, score=found[0][1])
                )

    @abstractmethod
    def detect(self, images: list[np.ndarray], queries: list[list[str]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per image: scores (boxes, its queries) and boxes (boxes, 4) xyxy in its pixels."""


class OwlGrounding(PhraseGrounding):
    backend: ClassVar[str] = "hf_grounding"

    def load_model(self, path: str) -> None:
        from transformers import Owlv2ForObjectDetection, Owlv2Processor

        self.processor = Owlv2Processor.from_pretrained(path)
        self.model = Owlv2ForObjectDetection.from_pretrained(path, dtype=self.dtype, use_safetensors=True)

    def detect(self, images: list[np.ndarray], queries: list[list[str]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """OWLv2 on a batch: per image, scores (patches, its queries) and boxes (patches, 4) xyxy in its pixels.

        OWLv2 pads each image to a square at the bottom and right, so boxes scale by the longer side.
        """
        import torch

        inputs = self.processor(
            text=queries,
            images=images,
            return_tensors="pt",
            truncation=True,
            max_length=self.options.max_query_tokens,
        )
        output = self.infer(inputs)
        logits = torch.sigmoid(output.logits.float()).cpu().numpy()
        centres = output.pred_boxes.float().cpu().numpy()
        scores, boxes = [], []
        for k, (image, image_queries) in enumerate(zip(images, queries, strict=True)):
            side = float(max(image.shape[:2]))
            cx, cy, w, h = centres[k].T
            boxes.append(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1) * side)
            scores.append(logits[k, :, : len(image_queries)])  # the processor pads queries with " " to the batch max
        return scores, boxes
