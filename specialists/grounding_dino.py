"""Phrase grounding by Grounding DINO (transformers), the grounding model of the FLD-5B paper.

Grounding DINO reads one prompt per image, its phrases separated by " . " ("a cat . a red sofa ."), and
scores every box against every prompt token. A phrase's score for a box is the best sigmoid over the
tokens inside the phrase's characters (found from the tokenizer's offsets); the separators and
special tokens belong to no phrase. Phrases that do not fit the text encoder's 256 tokens are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from schemas.bounds import Fraction, PositiveInt
from specialists.grounding_hf import GroundingOptions, PhraseGrounding


@dataclass(frozen=True)
class DinoGroundingOptions(GroundingOptions):
    """Thresholds are those of Grounding DINO's README (box 0.35, text 0.25), in this engine's terms:
    a box is kept when its best phrase scores at least ``box_threshold``, and grounds every phrase scoring
    at least ``min_score`` (the README's text threshold, which decides the tokens that name a box).
    The confidence filter applies the profile's grounding threshold later.
    ``max_query_tokens`` bounds the whole prompt, [CLS] and [SEP] included (the model's ``max_text_len``
    bounds it too)."""

    model: str = "IDEA-Research/grounding-dino-base"
    min_score: Fraction = 0.25
    box_threshold: Fraction = 0.35
    max_query_tokens: PositiveInt = 256


def dino_prompt(phrases: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """The phrases as one Grounding DINO prompt, "a cat . a red sofa .", with each phrase's character span in it."""
    spans, start = [], 0
    for phrase in phrases:
        spans.append((start, start + len(phrase)))
        start += len(phrase) + len(" . ")
    return " . ".join(phrases) + " ." if phrases else "", spans


def phrases_within(token_counts: list[int], max_tokens: int) -> int:
    """How many leading phrases fit a prompt of ``max_tokens``: [CLS], each phrase's tokens and its ".", [SEP]."""
    used = 2 + np.cumsum([count + 1 for count in token_counts])
    return int(np.searchsorted(used, max_tokens, side="right"))


def phrase_token_mask(offsets: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
    """(phrases, tokens): True where a token's characters (``offsets``, (tokens, 2)) overlap a phrase's span.

    Special and padding tokens have empty offsets and belong to no phrase.
    """
    bounds = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    starts, ends = offsets[:, 0], offsets[:, 1]
    return (starts < bounds[:, 1:]) & (ends > bounds[:, :1]) & (ends > starts)


def phrase_scores(token_probs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(boxes, phrases): each phrase's best token probability per box (-inf for a phrase without tokens)."""
    return np.where(mask[None], token_probs[:, None, :], -np.inf).max(axis=-1)


class GroundingDino(PhraseGrounding):
    backend: ClassVar[str] = "grounding_dino"
    Options: ClassVar[type] = DinoGroundingOptions

    def load_model(self, path: str) -> None:
        from transformers import AutoProcessor, GroundingDinoForObjectDetection

        self.processor = AutoProcessor.from_pretrained(path)
        self.model = GroundingDinoForObjectDetection.from_pretrained(path, dtype=self.dtype, use_safetensors=True)

    def detect(self, images: list[np.ndarray], queries: list[list[str]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Grounding DINO on a batch: per image, scores (boxes, its queries) and boxes (boxes, 4) xyxy in its pixels.

        Boxes come normalised cxcywh relative to the image without the batch's padding, so they scale by its size.
        """
        import torch

        tokenizer = self.processor.tokenizer
        max_tokens = min(self.options.max_query_tokens, self.model.config.max_text_len)
        prompts = []
        for image_queries in queries:
            counts = [len(ids) for ids in tokenizer(image_queries, add_special_tokens=False)["input_ids"]]
            prompts.append(dino_prompt(image_queries[: phrases_within(counts, max_tokens)]))
        text = tokenizer(
            [caption for caption, _ in prompts],
            padding="longest",
            truncation=True,
            max_length=max_tokens,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        offsets = text.pop("offset_mapping").numpy()
        output = self.infer({**text, **self.processor.image_processor(images=images, return_tensors="pt")})
        token_probs = torch.sigmoid(output.logits.float()).cpu().numpy()[:, :, : offsets.shape[1]]
        centres = output.pred_boxes.float().cpu().numpy()
        scores, boxes = [], []
        for k, (image, image_queries, (_, spans)) in enumerate(zip(images, queries, prompts, strict=True)):
            image_scores = np.full((len(centres[k]), len(image_queries)), -np.inf)
            image_scores[:, : len(spans)] = phrase_scores(token_probs[k], phrase_token_mask(offsets[k], spans))
            image_scores[image_scores.max(axis=1) < self.options.box_threshold] = -np.inf
            height, width = image.shape[:2]
            cx, cy, w, h = centres[k].T
            corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
            boxes.append(corners * np.array([width, height, width, height], dtype=np.float64))
            scores.append(image_scores)
        return scores, boxes
