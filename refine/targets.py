"""Annotated images as Florence-2 multitask training samples: a task prompt and a target with location tokens.

Targets follow transformers' Florence-2 formats exactly, so ``Florence2Processor.post_process_generation``
parses each one back to the same geometry (within one location bin). Pure functions over records.

What each task is taught from:

- ``<CAPTION>``, ``<DETAILED_CAPTION>``, ``<MORE_DETAILED_CAPTION>``: every text of the granularity (the
  captioner's and the aggregator's), one sample each.
- ``<OD>``: object regions with their labels; ``<DENSE_REGION_CAPTION>``: dense captions and the region
  captions CLIP chose for object boxes; ``<REGION_PROPOSAL>``: proposals, without labels.
- ``<CAPTION_TO_PHRASE_GROUNDING>``: per text, its grounded phrases; ``<REFERRING_EXPRESSION_SEGMENTATION>``:
  per grounded phrase with masks, the polygons of its regions (``<sep>`` between them).
- ``<OCR>``: the OCR lines; ``<OCR_WITH_REGION>``: lines with their quads; ``<REGION_TO_OCR>``: a line's box
  to its text.
- ``<REGION_TO_SEGMENTATION>``: a region's box to its polygon; ``<REGION_TO_DESCRIPTION>``: a region
  caption's box to its text; ``<REGION_TO_CATEGORY>``: an object's box to its label;
  ``<OPEN_VOCABULARY_DETECTION>``: an object label to all boxes with that label.

Labels in location targets: the processor parses a label as the text before a location token and drops its
non-ASCII characters, so a target's label is written in ASCII (accents removed by Unicode decomposition,
"café" -> "cafe"; characters with no ASCII form, such as CJK, removed) and a region whose label is then empty
is left out of the target: written, its boxes would parse as more boxes of the label before it. Plain-text
targets (captions, OCR text, descriptions, categories) keep their text as it is.

Polygons are simplified (Douglas-Peucker, ``cv2.approxPolyDP``, the tolerance doubled until it fits) to at
most :data:`POLYGON_VERTICES` vertices per target, shared among the polygons of a target, so a mask's outline
never runs past the training sequence length (``refine.train.max_target_tokens``, 512) and is never cut there.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from schemas.florence_tasks import (
    BOX_TASKS,
    CAPTION_TASKS,
    GROUNDING_TASK,
    OCR_REGION_TASK,
    OPEN_VOCABULARY_TASK,
    REFERRING_SEGMENTATION_TASK,
    REGION_CATEGORY_TASK,
    REGION_DESCRIPTION_TASK,
    REGION_OCR_TASK,
    REGION_SEGMENTATION_TASK,
    TRAINING_TASKS,
)
from schemas.geometry import box_to_quad, quantize_points
from schemas.records import ImageRecord, Region

# Vertices of all polygons of one target: 2 location tokens each, 128 of the 512 target tokens.
POLYGON_VERTICES = 64
# The fewest vertices a polygon keeps (a triangle).
MIN_VERTICES = 3
POLYGON_SEPARATOR = "<sep>"
# Region kinds taught by <DENSE_REGION_CAPTION>: Florence-2's dense captions and CLIP's chosen region captions.
DENSE_CAPTION_KINDS = ("dense_caption", "region_caption")


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


def _text(text: str) -> str:
    """Text without markup the parser would split on, whitespace collapsed."""
    return " ".join(text.replace("<", " ").replace(">", " ").split())


def ascii_label(text: str) -> str:
    """A label as the processor reads it back: ASCII (accents decomposed away), no markup, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    return _text(decomposed.encode("ascii", "ignore").decode("ascii"))


def simplify_polygon(points: Sequence[float], max_vertices: int) -> list[float]:
    """``points`` (x/y interleaved) with at most ``max_vertices`` vertices: Douglas-Peucker with a doubling
    tolerance; if that leaves fewer than three, every k-th vertex instead."""
    contour = np.asarray(points, dtype=np.float32).reshape(-1, 1, 2)
    if len(contour) <= max_vertices:
        return [float(v) for v in points]
    tolerance = 0.5
    while True:
        simplified = cv2.approxPolyDP(contour, tolerance, True)
        if len(simplified) <= max_vertices:
            break
        tolerance *= 2
    if len(simplified) < MIN_VERTICES:
        step = -(-len(contour) // max_vertices)
        simplified = contour[::step]
    return [float(v) for v in simplified.reshape(-1)]


def polygon_target(polygons: Sequence[Sequence[float]], width: int, height: int) -> str:
    """Polygons as location tokens, ``<sep>`` between them, within :data:`POLYGON_VERTICES` in all."""
    budget = max(MIN_VERTICES, POLYGON_VERTICES // max(1, len(polygons)))
    return POLYGON_SEPARATOR.join(locations(simplify_polygon(p, budget), width, height) for p in polygons)


def _regions(record: ImageRecord, *kinds: str) -> list[Region]:
    return [r for r in record.regions if r.kind in kinds]


def _labelled(regions: Iterable[Region], width: int, height: int) -> str:
    """``label<loc>...`` for each region with a non-empty ASCII label (others left out, see the module doc)."""
    parts = []
    for region in regions:
        label = ascii_label(region.text)
        if label:
            parts.append(label + locations(region.bbox, width, height))
    return "".join(parts)


def florence_samples(
    record: ImageRecord, tasks: Iterable[str] = TRAINING_TASKS, max_regions: int = 64
) -> list[FlorenceSample]:
    """Every sample ``record`` supports among ``tasks`` (a task with no annotation to teach gives none)."""
    w, h, out = record.width, record.height, []

    def add(task: str, target: str, prefix: str | None = None) -> None:
        if target:
            out.append(FlorenceSample(record.image_id, task, prefix or task, target))

    def box(region: Region) -> str:
        return locations(region.bbox, w, h)

    for task in tasks:
        if task in CAPTION_TASKS:
            for text in record.texts:
                if text.granularity == CAPTION_TASKS[task]:
                    add(task, text.text.strip())
        elif task == "<REGION_PROPOSAL>":
            add(task, "".join(box(r) for r in _regions(record, "proposal")[:max_regions]))
        elif task == "<DENSE_REGION_CAPTION>":
            add(task, _labelled(_regions(record, *DENSE_CAPTION_KINDS)[:max_regions], w, h))
        elif task in BOX_TASKS:
            add(task, _labelled(_regions(record, BOX_TASKS[task])[:max_regions], w, h))
        elif task == GROUNDING_TASK:
            for text in record.texts:
                phrases = [p for p in record.phrases if p.text_id == text.id and p.regions]
                target = "".join(
                    ascii_label(p.phrase) + "".join(locations(g.bbox, w, h) for g in p.regions)
                    for p in phrases
                    if ascii_label(p.phrase)
                )
                add(task, target, task + text.text)
        elif task == REFERRING_SEGMENTATION_TASK:
            for phrase in record.phrases:
                polygons = [g.polygon for g in phrase.regions if g.polygon is not None]
                if polygons:
                    add(task, polygon_target(polygons, w, h), task + phrase.phrase)
        elif task == "<OCR>":
            add(task, "\n".join(r.text for r in _regions(record, "ocr_line")))
        elif task == OCR_REGION_TASK:
            lines = _regions(record, "ocr_line")[:max_regions]
            add(task, "".join(_text(r.text) + locations(r.quad or box_to_quad(r.bbox), w, h) for r in lines))
        elif task == REGION_OCR_TASK:
            for line in _regions(record, "ocr_line"):
                add(task, line.text.strip(), task + box(line))
        elif task == REGION_SEGMENTATION_TASK:
            for region in record.regions:
                if region.polygon is not None:
                    add(task, polygon_target([region.polygon], w, h), task + box(region))
        elif task == REGION_DESCRIPTION_TASK:
            for region in _regions(record, "region_caption"):
                add(task, region.text.strip(), task + box(region))
        elif task == REGION_CATEGORY_TASK:
            for region in _regions(record, "object"):
                add(task, region.text.strip(), task + box(region))
        elif task == OPEN_VOCABULARY_TASK:
            by_label: dict[str, list[Region]] = {}
            for region in _regions(record, "object"):
                if ascii_label(region.text):
                    by_label.setdefault(ascii_label(region.text), []).append(region)
            for label, regions in by_label.items():
                add(task, label + "".join(box(r) for r in regions[:max_regions]), task + label)
        else:
            raise ValueError(f"unknown Florence-2 task {task!r} (known: {', '.join(TRAINING_TASKS)})")
    return out
