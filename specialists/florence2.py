"""Florence-2 through transformers' native ``Florence2ForConditionalGeneration`` (no remote code).

One actor holds the model and runs every configured task on each batch of decoded images:
captions at three granularities, detection, region proposals, dense region captions, OCR with
regions, phrase grounding of the image's captions, and descriptions of existing object boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from schemas.records import ImageRecord, Provenance, Region, Text
from schemas.stage import Resources
from specialists.base import Specialist, WeightsCheck, file_sha256, hf_snapshot_path, resolve_hf_model
from specialists.florence_parsing import (
    CAPTION_TASKS,
    SUPPORTED_TASKS,
    location_prompt,
    parse_florence_output,
)
from specialists.torch_device import check_dtype, device_and_dtype

DEFAULT_TASKS = (
    "<CAPTION>",
    "<DETAILED_CAPTION>",
    "<MORE_DETAILED_CAPTION>",
    "<OD>",
    "<REGION_PROPOSAL>",
    "<DENSE_REGION_CAPTION>",
    "<OCR_WITH_REGION>",
    "<CAPTION_TO_PHRASE_GROUNDING>",
    "<REGION_TO_DESCRIPTION>",
)


@dataclass(frozen=True)
class Florence2Options:
    """``model``: a local checkpoint directory or a Hugging Face id already in the local cache.
    ``ground``: granularities of captions grounded by ``<CAPTION_TO_PHRASE_GROUNDING>``.
    ``describe_regions``: at most this many object boxes per image get ``<REGION_TO_DESCRIPTION>``."""

    model: str = "florence-community/Florence-2-large"
    revision: str | None = None
    tasks: tuple[str, ...] = DEFAULT_TASKS
    max_new_tokens: int = 256
    num_beams: int = 3
    ground: tuple[str, ...] = ("brief",)
    describe_regions: int = 8
    round: int = 0  # the refinement round whose model this is (0: a specialist)
    dtype: str = "auto"  # auto: bf16 on GPU, fp32 on CPU; or float32, bfloat16, float16

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in SUPPORTED_TASKS]
        if unknown:
            raise ValueError(f"tasks: {unknown[0]!r} is not one of {', '.join(SUPPORTED_TASKS)}")
        check_dtype(self.dtype)


class Florence2(Specialist):
    backend: ClassVar[str] = "florence2"
    produces: ClassVar[frozenset[str]] = frozenset({"texts", "regions", "phrases"})
    Options: ClassVar[type] = Florence2Options

    def __init__(self, name: str, options: Florence2Options, resources: Resources | None = None) -> None:
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
        from transformers import Florence2ForConditionalGeneration, Florence2Processor

        path = hf_snapshot_path(self.check_weights())
        self.device, self.dtype = device_and_dtype(self.resources, self.options.dtype)
        self.processor = Florence2Processor.from_pretrained(path)
        self.model = Florence2ForConditionalGeneration.from_pretrained(path, dtype=self.dtype, use_safetensors=True)
        self.model.to(self.device).eval()

    def generate(self, images: list[Any], prompts: list[str]) -> list[str]:
        """Run one batch of (image, prompt) pairs; return the raw generated texts."""
        import torch

        inputs = self.processor(images=images, text=prompts, return_tensors="pt", padding=True)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            generated = self.model.generate(
                **inputs, max_new_tokens=self.options.max_new_tokens, num_beams=self.options.num_beams, do_sample=False
            )
        return self.processor.batch_decode(generated, skip_special_tokens=False)

    def run_task(self, task: str, images: list[Any], prompts: list[str]) -> list[Any]:
        texts = self.generate(images, prompts)
        return [
            self.processor.post_process_generation(text, task=task, image_size=image.size)[task]
            for text, image in zip(texts, images, strict=True)
        ]

    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        from PIL import Image

        pictures = [Image.fromarray(image) for image in images]
        provenance = self.provenance(self.options.round)
        simple = [
            t for t in self.options.tasks if t not in ("<CAPTION_TO_PHRASE_GROUNDING>", "<REGION_TO_DESCRIPTION>")
        ]
        for task in simple:
            for record, answer in zip(records, self.run_task(task, pictures, [task] * len(pictures)), strict=True):
                self._add(record, parse_florence_output(task, answer, record.width, record.height, provenance))
        if "<CAPTION_TO_PHRASE_GROUNDING>" in self.options.tasks:
            self._ground(records, pictures, provenance)
        if "<REGION_TO_DESCRIPTION>" in self.options.tasks:
            self._describe(records, pictures, provenance)

    def _ground(self, records: list[ImageRecord], pictures: list[Any], provenance: Provenance) -> None:
        task = "<CAPTION_TO_PHRASE_GROUNDING>"
        jobs = [(i, text) for i, r in enumerate(records) for text in r.texts if text.granularity in self.options.ground]
        if not jobs:
            return
        answers = self.run_task(task, [pictures[i] for i, _ in jobs], [task + text.text for _, text in jobs])
        for (i, text), answer in zip(jobs, answers, strict=True):
            record = records[i]
            record.phrases.extend(
                parse_florence_output(task, answer, record.width, record.height, provenance, caption=text)  # type: ignore[arg-type]
            )

    def _describe(self, records: list[ImageRecord], pictures: list[Any], provenance: Provenance) -> None:
        task = "<REGION_TO_DESCRIPTION>"
        jobs = [
            (i, region.bbox)
            for i, r in enumerate(records)
            for region in [x for x in r.regions if x.kind == "object"][: self.options.describe_regions]
        ]
        if not jobs:
            return
        prompts = [task + location_prompt(box, records[i].width, records[i].height) for i, box in jobs]
        answers = self.run_task(task, [pictures[i] for i, _ in jobs], prompts)
        for (i, box), answer in zip(jobs, answers, strict=True):
            record = records[i]
            self._add(record, parse_florence_output(task, answer, record.width, record.height, provenance, region=box))

    @staticmethod
    def _add(record: ImageRecord, annotations: list[Any]) -> None:
        for annotation in annotations:
            if isinstance(annotation, Text):
                record.texts.append(annotation)
            elif isinstance(annotation, Region):
                record.regions.append(annotation)
            else:
                record.phrases.append(annotation)


def hf_model_identity(check: WeightsCheck, revision: str | None) -> str:
    """``id@revision`` for a hub model (the cached snapshot's commit), ``dir@sha256-prefix`` for a local one."""
    if not check.found:
        return f"{check.model}@missing"
    local = Path(check.model).expanduser()
    if local.is_dir():
        weights = sorted(local.glob("*.safetensors"))
        digest = file_sha256(weights[0], limit=64 * 1024 * 1024)[:12] if weights else "noweights"
        return f"{local.name}@sha256:{digest}"
    return f"{check.model}@{revision or Path(check.detail).name}"


__all__ = ["CAPTION_TASKS", "Florence2", "Florence2Options", "hf_model_identity"]
