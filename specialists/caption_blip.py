"""Brief captions from a transformers image-to-text model (BLIP; the captioning alternative to Florence-2).

Loaded with ``AutoModelForImageTextToText``/``AutoProcessor``, so a GIT checkpoint takes the same path
(only BLIP is covered by tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from schemas.bounds import PositiveInt
from schemas.records import ImageRecord, Text
from specialists.hf_model import HfModelOptions, HfSpecialist


@dataclass(frozen=True)
class ImageCaptionOptions(HfModelOptions):
    """``prompt``: optional conditional-captioning prefix (BLIP: "a picture of"), removed from the output."""

    model: str = "Salesforce/blip-image-captioning-large"
    granularity: str = "brief"
    prompt: str | None = None
    max_new_tokens: PositiveInt = 30
    num_beams: PositiveInt = 3


class ImageCaptioner(HfSpecialist):
    """One caption per image, written as a Text of the configured granularity."""

    backend: ClassVar[str] = "blip"
    produces: ClassVar[frozenset[str]] = frozenset({"texts"})
    Options: ClassVar[type] = ImageCaptionOptions

    def load_model(self, path: str) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(path)
        self.model = AutoModelForImageTextToText.from_pretrained(path, dtype=self.dtype, use_safetensors=True)

    def caption(self, pictures: list[Any]) -> list[str]:
        """Captions of a batch of PIL images (one padded forward pass)."""
        if not pictures:
            return []
        text = [self.options.prompt] * len(pictures) if self.options.prompt else None
        inputs = self.processor(images=pictures, text=text, return_tensors="pt", padding=True)
        generated = self.generate_ids(
            inputs, max_new_tokens=self.options.max_new_tokens, num_beams=self.options.num_beams
        )
        captions = self.processor.batch_decode(generated, skip_special_tokens=True)
        prompt = (self.options.prompt or "").strip().lower()
        return [strip_prompt(c, prompt) for c in captions]

    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        from PIL import Image

        provenance = self.provenance()
        for record, caption in zip(records, self.caption([Image.fromarray(i) for i in images]), strict=True):
            if caption:
                record.texts.append(Text(self.options.granularity, caption, provenance))  # type: ignore[arg-type]


def strip_prompt(caption: str, prompt: str) -> str:
    """The caption without a conditional prompt it starts with, whitespace trimmed."""
    caption = caption.strip()
    if prompt and caption.lower().startswith(prompt):
        caption = caption[len(prompt) :].strip()
    return caption
