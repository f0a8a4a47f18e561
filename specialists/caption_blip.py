"""Brief captions from a transformers image-to-text model (BLIP; the captioning alternative to Florence-2).

Loaded with ``AutoModelForImageTextToText``/``AutoProcessor``, so a GIT checkpoint takes the same path
(only BLIP is covered by tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from schemas.records import ImageRecord, Text
from schemas.stage import Resources
from specialists.base import Specialist, WeightsCheck, hf_snapshot_path, resolve_hf_model
from specialists.florence2 import hf_model_identity
from specialists.torch_device import check_dtype, device_and_dtype


@dataclass(frozen=True)
class ImageCaptionOptions:
    """``model``: a local checkpoint directory or a Hugging Face id already in the local cache.
    ``prompt``: optional conditional-captioning prefix (BLIP: "a picture of"), removed from the output."""

    model: str = "Salesforce/blip-image-captioning-large"
    revision: str | None = None
    granularity: str = "brief"
    prompt: str | None = None
    max_new_tokens: int = 30
    num_beams: int = 3
    dtype: str = "auto"  # auto: bf16 on GPU, fp32 on CPU; or float32, bfloat16, float16

    def __post_init__(self) -> None:
        check_dtype(self.dtype)


class ImageCaptioner(Specialist):
    """One caption per image, written as a Text of the configured granularity."""

    backend: ClassVar[str] = "blip"
    produces: ClassVar[frozenset[str]] = frozenset({"texts"})
    Options: ClassVar[type] = ImageCaptionOptions

    def __init__(self, name: str, options: ImageCaptionOptions, resources: Resources | None = None) -> None:
        super().__init__(name, options, resources)
        self.model: Any = None
        self.processor: Any = None
        self._model_id: str | None = None

    def check_weights(self) -> WeightsCheck:
        return resolve_hf_model(self.name, self.backend, self.options.model)

    @property
    def model_id(self) -> str:
        if self._model_id is None:
            self._model_id = hf_model_identity(self.check_weights(), self.options.revision)
        return self._model_id

    def load(self) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        path = hf_snapshot_path(self.check_weights())
        self.device, self.dtype = device_and_dtype(self.resources, self.options.dtype)
        self.processor = AutoProcessor.from_pretrained(path)
        self.model = AutoModelForImageTextToText.from_pretrained(path, dtype=self.dtype, use_safetensors=True)
        self.model.to(self.device).eval()

    def caption(self, pictures: list[Any]) -> list[str]:
        """Captions of a batch of PIL images (one padded forward pass)."""
        import torch

        if not pictures:
            return []
        text = [self.options.prompt] * len(pictures) if self.options.prompt else None
        inputs = self.processor(images=pictures, text=text, return_tensors="pt", padding=True)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            generated = self.model.generate(
                **inputs, max_new_tokens=self.options.max_new_tokens, num_beams=self.options.num_beams, do_sample=False
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
