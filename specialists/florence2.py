"""Florence-2 through transformers' native ``Florence2ForConditionalGeneration`` (no remote code).

One actor holds the model and runs every configured task on each batch of decoded images:
captions at three granularities, detection, region proposals, dense region captions, OCR with
regions, phrase grounding of the image's captions, and descriptions of existing object boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from schemas.bounds import NonNegativeInt, PositiveInt
from schemas.florence_tasks import (
    DEFAULT_TASKS,
    GROUNDING_TASK,
    INPUT_TASKS,
    REGION_DESCRIPTION_TASK,
    SUPPORTED_TASKS,
)
from schemas.records import ImageRecord, Provenance, Region, Text
from specialists.florence_parsing import location_prompt, parse_florence_output
from specialists.hf_model import HfModelOptions, HfSpecialist


@dataclass(frozen=True)
class Florence2Options(HfModelOptions):
    """``ground``: granularities of captions grounded by ``<CAPTION_TO_PHRASE_GROUNDING>``.
    ``describe_regions``: at most this many object boxes per image get ``<REGION_TO_DESCRIPTION>``."""

    model: str = "florence-community/Florence-2-large"
    tasks: tuple[str, ...] = DEFAULT_TASKS
    max_new_tokens: PositiveInt = 256
    num_beams: PositiveInt = 3
    ground: tuple[str, ...] = ("brief",)
    describe_regions: NonNegativeInt = 8
    round: NonNegativeInt = 0  # the refinement round whose model this is (0: a specialist)

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in SUPPORTED_TASKS]
        if unknown:
            raise ValueError(f"tasks: {unknown[0]!r} is not one of {', '.join(SUPPORTED_TASKS)}")
        super().__post_init__()


class Florence2(HfSpecialist):
    backend: ClassVar[str] = "florence2"
    produces: ClassVar[frozenset[str]] = frozenset({"texts", "regions", "phrases"})
    Options: ClassVar[type] = Florence2Options

    def load_model(self, path: str) -> None:
        from transformers import Florence2ForConditionalGeneration, Florence2Processor

        self.processor = Florence2Processor.from_pretrained(path)
        self.model = Florence2ForConditionalGeneration.from_pretrained(path, dtype=self.dtype, use_safetensors=True)

    def generate(self, images: list[Any], prompts: list[str]) -> list[str]:
        """Run one batch of (image, prompt) pairs; return the raw generated texts."""
        inputs = self.processor(images=images, text=prompts, return_tensors="pt", padding=True)
        generated = self.generate_ids(
            inputs, max_new_tokens=self.options.max_new_tokens, num_beams=self.options.num_beams
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
        simple = [t for t in self.options.tasks if t not in INPUT_TASKS]
        for task in simple:
            for record, answer in zip(records, self.run_task(task, pictures, [task] * len(pictures)), strict=True):
                self._add(record, parse_florence_output(task, answer, record.width, record.height, provenance))
        if GROUNDING_TASK in self.options.tasks:
            self._ground(records, pictures, provenance)
        if REGION_DESCRIPTION_TASK in self.options.tasks:
            self._describe(records, pictures, provenance)

    def _ground(self, records: list[ImageRecord], pictures: list[Any], provenance: Provenance) -> None:
        task = GROUNDING_TASK
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
        task = REGION_DESCRIPTION_TASK
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
