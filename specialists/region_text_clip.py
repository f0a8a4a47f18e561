"""Region text as in FLD-5B: each object box gets candidate texts and CLIP picks the best-matching one.

Candidates per box: its category, a brief caption of the crop (when ``captioner`` names an
image-to-text checkpoint) and that caption's noun phrases (spaCy noun chunks). The chosen text is
written as a new ``region_caption`` region on the object's box, so the detector's label stays on the
``object`` region (detection targets keep their category) and the agreement is kept beside it:
cosine similarity as ``score`` and ``metrics["clip_similarity"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from schemas.bounds import PositiveInt
from schemas.metrics import CANDIDATES, CLIP_SIMILARITY
from schemas.records import ImageRecord, Region
from schemas.stage import Resources, WeightsCheck
from specialists.caption_blip import ImageCaptioner, ImageCaptionOptions
from specialists.hf_model import HfModelOptions, HfSpecialist


@dataclass(frozen=True)
class ClipRegionTextOptions(HfModelOptions):
    """``captioner``: checkpoint of an image-to-text model for crop captions (None: category and nothing else
    unless noun phrases come from elsewhere). ``min_side``: boxes smaller than this many pixels are skipped."""

    model: str = "openai/clip-vit-large-patch14"
    captioner: str | None = None
    caption_max_new_tokens: PositiveInt = 20
    noun_phrases: bool = True
    kinds: tuple[str, ...] = ("object",)
    max_regions: PositiveInt = 32
    min_side: PositiveInt = 4


def candidate_texts(category: str, caption: str, noun_phrases: list[str]) -> list[str]:
    """The category, the crop caption and its noun phrases, trimmed, without empties or repeats (case-insensitive)."""
    seen: set[str] = set()
    out: list[str] = []
    for text in [category, caption, *noun_phrases]:
        text = text.strip()
        if text and text.lower() not in seen:
            seen.add(text.lower())
            out.append(text)
    return out


def crop(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    height, width = image.shape[:2]
    x0, y0 = max(int(box[0]), 0), max(int(box[1]), 0)
    x1, y1 = min(int(np.ceil(box[2])), width), min(int(np.ceil(box[3])), height)
    return image[y0:y1, x0:x1]


class ClipRegionText(HfSpecialist):
    backend: ClassVar[str] = "clip_region_text"
    produces: ClassVar[frozenset[str]] = frozenset({"regions"})
    requires: ClassVar[frozenset[str]] = frozenset({"regions"})
    Options: ClassVar[type] = ClipRegionTextOptions

    def __init__(self, name: str, options: ClipRegionTextOptions, resources: Resources | None = None) -> None:
        super().__init__(name, options, resources)
        self.captioner: ImageCaptioner | None = None
        if options.captioner:
            caption_options = ImageCaptionOptions(
                model=options.captioner, max_new_tokens=options.caption_max_new_tokens, num_beams=1
            )
            self.captioner = ImageCaptioner(f"{name}.captioner", caption_options, resources)

    def check_weights(self) -> WeightsCheck:
        """CLIP's check, extended with the captioner's places; found only when both are."""
        check = self.model_check()
        if self.captioner is None:
            return check
        captioner = self.captioner.check_weights()
        missing = [f"{c.model!r}: {c.detail}" for c in (check, captioner) if not c.found]
        return WeightsCheck(
            self.name,
            self.backend,
            self.options.model,
            check.looked_in + captioner.looked_in,
            check.found and captioner.found,
            "; ".join(missing) or check.detail,
        )

    @property
    def model_id(self) -> str:
        """CLIP's identity, then the captioner's."""
        clip = super().model_id
        return clip if self.captioner is None else f"{clip}+{self.captioner.model_id}"

    def load_model(self, path: str) -> None:
        from transformers import AutoModel, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, dtype=self.dtype, use_safetensors=True)

    def load(self) -> None:
        super().load()
        if self.captioner is not None:
            self.captioner.setup()
        if self.options.noun_phrases:
            from filters.spacy_model import load_spacy

            self.nlp = load_spacy(disable=("ner", "lemmatizer"))

    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        from PIL import Image

        jobs: list[tuple[int, Region, Any]] = []
        for i, (image, record) in enumerate(zip(images, records, strict=True)):
            boxes = [r for r in record.regions if r.kind in self.options.kinds][: self.options.max_regions]
            for region in boxes:
                pixels = crop(image, region.bbox)
                if min(pixels.shape[:2]) >= self.options.min_side:
                    jobs.append((i, region, Image.fromarray(np.ascontiguousarray(pixels))))
        if not jobs:
            return
        crops = [c for _, _, c in jobs]
        captions = self.captioner.caption(crops) if self.captioner is not None else [""] * len(jobs)
        candidates = [
            candidate_texts(region.text, caption, self._noun_phrases(caption))
            for (_, region, _), caption in zip(jobs, captions, strict=True)
        ]
        similarities = self.similarities(crops, candidates)
        provenance = self.provenance()
        for (i, region, _), texts, scores in zip(jobs, candidates, similarities, strict=True):
            if not texts:
                continue
            best = int(np.argmax(scores))
            score = float(scores[best])
            records[i].regions.append(
                Region(
                    "region_caption",
                    region.bbox,
                    texts[best],
                    provenance,
                    score=score,
                    metrics={CLIP_SIMILARITY: score, CANDIDATES: float(len(texts))},
                )
            )

    def _noun_phrases(self, caption: str) -> list[str]:
        if not caption or not self.options.noun_phrases:
            return []
        return [chunk.text for chunk in self.nlp(caption).noun_chunks]

    def similarities(self, crops: list[Any], candidates: list[list[str]]) -> list[np.ndarray]:
        """Cosine similarity of each crop with each of its candidate texts (one image and one text pass)."""
        import torch

        texts = sorted({t for group in candidates for t in group})
        if not texts:
            return [np.zeros(0) for _ in candidates]
        with torch.inference_mode():
            pixels = self.processor(images=crops, return_tensors="pt")["pixel_values"].to(self.device, self.dtype)
            image_embeds = self.model.get_image_features(pixel_values=pixels)
            tokens = self.processor(text=texts, return_tensors="pt", padding=True, truncation=True)
            tokens = {k: v.to(self.device) for k, v in tokens.items()}
            text_embeds = self.model.get_text_features(**tokens)
        image_embeds = _as_tensor(image_embeds)
        text_embeds = _as_tensor(text_embeds)
        image_embeds = torch.nn.functional.normalize(image_embeds.float(), dim=-1)
        text_embeds = torch.nn.functional.normalize(text_embeds.float(), dim=-1)
        matrix = (image_embeds @ text_embeds.T).cpu().numpy()
        index = {t: j for j, t in enumerate(texts)}
        return [matrix[k, [index[t] for t in group]] for k, group in enumerate(candidates)]


def _as_tensor(output: Any) -> Any:
    """``get_*_features`` return a tensor or (newer transformers) an output object holding the pooled embedding."""
    return output if hasattr(output, "norm") else output.pooler_output
