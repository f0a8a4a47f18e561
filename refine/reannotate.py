"""A refinement round's model re-annotates images, its predictions are filtered, then merged into the records.

The model runs as the Florence-2 specialist (same generation and output parsing, ``provenance.round = k``)
on blank copies of the records; the predictions then go through the same filter stages as the specialists'
outputs before :func:`refine.merge.merge_round` compares them with the annotations. No Ray here: the
engine runs a :class:`RoundAnnotator` per actor.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from refine.merge import MergeSettings, MergeStats, merge_round
from schemas.bounds import NonNegativeFloat, PositiveInt
from schemas.florence_tasks import CAPTION_TASKS, SUPPORTED_TASKS, TASK_REGION_KINDS
from schemas.records import ImageRecord
from schemas.stage import Resources, Stage
from specialists.florence2 import Florence2, Florence2Options

REFINE_SOURCE = "refine"


@dataclass(frozen=True)
class AnnotateSettings:
    max_new_tokens: PositiveInt = 256
    num_beams: PositiveInt = 3
    num_gpus: NonNegativeFloat = 0.0


def annotation_tasks(tasks: Iterable[str]) -> tuple[str, ...]:
    """The training tasks the model can also annotate with (``<OCR>`` and segmentation have no merge target)."""
    return tuple(task for task in SUPPORTED_TASKS if task in set(tasks))


def merged_kinds(tasks: Iterable[str]) -> set[str]:
    return {TASK_REGION_KINDS[task] for task in tasks if task in TASK_REGION_KINDS}


class RoundAnnotator:
    """Round ``round_``'s checkpoint as an annotator, followed by ``filters`` (already-built filter stages)."""

    def __init__(
        self,
        checkpoint: str,
        round_: int,
        tasks: Sequence[str],
        filters: Sequence[Stage] = (),
        settings: AnnotateSettings = AnnotateSettings(),
    ) -> None:
        self.tasks = annotation_tasks(tasks)
        if not self.tasks:
            raise ValueError(
                f"none of the tasks {list(tasks)} can re-annotate (supported: {', '.join(SUPPORTED_TASKS)})"
            )
        self.round = round_
        grounded = tuple(CAPTION_TASKS[t] for t in self.tasks if t in CAPTION_TASKS) or ("brief",)
        options = Florence2Options(
            model=checkpoint,
            tasks=self.tasks,
            max_new_tokens=settings.max_new_tokens,
            num_beams=settings.num_beams,
            ground=grounded,
            round=round_,
        )
        self.model = Florence2(REFINE_SOURCE, options, Resources(num_gpus=settings.num_gpus))
        self.filters = list(filters)

    @property
    def model_id(self) -> str:
        return self.model.model_id

    def setup(self) -> None:
        self.model.setup()
        for stage in self.filters:
            stage.setup()

    def predict(self, records: Sequence[ImageRecord], images: list[np.ndarray]) -> list[ImageRecord]:
        """The model's filtered annotations of each image, as fresh records (``records`` are not touched)."""
        blank = [ImageRecord(r.image_id, r.source_uri, r.width, r.height, r.format) for r in records]
        self.model.process(blank, images)
        for stage in self.filters:
            stage.process(blank, images if stage.needs_pixels else None)
        return blank

    def refine(
        self, records: Sequence[ImageRecord], images: list[np.ndarray], settings: MergeSettings, may_drop: bool = True
    ) -> list[MergeStats]:
        """Predict, filter and merge into ``records`` in place; one :class:`MergeStats` per record."""
        kinds = merged_kinds(self.tasks)
        predictions = self.predict(records, images)
        return [
            merge_round(record, predicted, kinds, self.round, settings, may_drop)
            for record, predicted in zip(records, predictions, strict=True)
        ]
