"""Annotated images as Florence-2 multitask training samples: a task prompt and a target with location tokens.

Targets follow transformers' Florence-2 formats exactly, so ``Florence2Processor.post_process_generation``
parses each one back to the same geometry (within one location bin). Pure functions over records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from schemas.florence_tasks import (
    BOX_TASKS,
    CAPTION_TASKS,
    GROUNDING_TASK,
    OCR_REGION_TASK,
    REGION_DESCRIPTION_TASK,
    TRAINING_TASKS,
)
from schemas.geometry import box_to_quad, quantize_points
from schemas.records import ImageRecord, Region


@dataclass(frozen=True, slots=True)
class FlorenceSample:
    """One training pair: ``prefix`` is what the processor takes as text, ``target`` what the model must write."""

    image_id: str
    task: str
    prefix: str
    target: str


def locations(points: Sequence[float], width: int, height: int) -> str:
    """x/y-interleaved pixel coordinates as ``<loc_i>`` tokens."""
    return "".join(f"<loc_{b}>" for b in quantize_points(list(points), width, height))


def _label(text: str) -> str:
    """Labels must not contain markup the parser would split on."""
    return " ".join(text.replace("<", " ").replace(">", " ").split())


def _regions(record: ImageRecord, kind: str) -> list[Region]:
    return [r for r in record.regions if r.kind == kind]


def florence_samples(
    record: ImageRecord, tasks: Iterable[str] = TRAINING_TASKS, max_regions: int = 64
) -> list[FlorenceSample]:
    """Every sample ``record`` supports among ``tasks`` (a task with no annotation to teach gives none)."""
    w, h, out = record.width, record.height, []

    def add(task: str, target: str, prefix: str | None = None) -> None:
        if target:
            out.append(FlorenceSample(record.image_id, task, prefix or task, target))

    for task in tasks:
        if task in CAPTION_TASKS:
            texts = [t for t in record.texts if t.granularity == CAPTION_TASKS[task]]
            if texts:
                add(task, texts[0].text.strip())
        elif task in BOX_TASKS:
            regions = _regions(record, BOX_TASKS[task])[:max_regions]
            labelled = task != "<REGION_PROPOSAL>"
            add(task, "".join((_label(r.text) if labelled else "") + locations(r.bbox, w, h) for r in regions))
        elif task == GROUNDING_TASK:
            for text in record.texts:
                phrases = [p for p in record.phrases if p.text_id == text.id and p.regions]
                target = "".join(
                    _label(p.phrase) + "".join(locations(g.bbox, w, h) for g in p.regions) for p in phrases
                )
                add(task, target, task + text.text)
        elif task == "<OCR>":
            add(task, "\n".join(r.text for r in _regions(record, "ocr_line")))
        elif task == OCR_REGION_TASK:
            lines = _regions(record, "ocr_line")[:max_regions]
            add(task, "".join(_label(r.text) + locations(r.quad or box_to_quad(r.bbox), w, h) for r in lines))
        elif task == "<REGION_TO_SEGMENTATION>":
            for region in record.regions:
                if region.polygon is not None:
                    add(task, locations(region.polygon, w, h), task + locations(region.bbox, w, h))
        elif task == REGION_DESCRIPTION_TASK:
            for region in _regions(record, "region_caption"):
                add(task, region.text.strip(), task + locations(region.bbox, w, h))
        else:
            raise ValueError(f"unknown Florence-2 task {task!r} (known: {', '.join(TRAINING_TASKS)})")
    return out
