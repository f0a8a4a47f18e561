"""Florence-2 outputs (as parsed by ``Florence2Processor.post_process_generation``) into schema annotations.

Pure functions, shared by the Florence-2 specialist and the refinement loop's re-annotation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas.florence_tasks import (
    BOX_TASKS,
    CAPTION_TASKS,
    GROUNDING_TASK,
    OCR_REGION_TASK,
    REGION_DESCRIPTION_TASK,
    SUPPORTED_TASKS,
)
from schemas.geometry import clip_box, quad_to_box
from schemas.records import GroundedRegion, Phrase, Provenance, Region, Text

Annotation = Text | Region | Phrase


def _clean(label: str) -> str:
    return label.replace("</s>", "").replace("<s>", "").replace("<pad>", "").strip()


def _box(values: Sequence[float], width: int, height: int) -> tuple[float, float, float, float] | None:
    x0, y0, x1, y1 = clip_box(values, width, height)
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1, y1)


def parse_florence_output(
    task: str,
    parsed: Any,
    width: int,
    height: int,
    provenance: Provenance,
    *,
    caption: Text | None = None,
    region: tuple[float, float, float, float] | None = None,
) -> list[Annotation]:
    """Turn one task's parsed answer into annotations.

    ``caption`` is the text a ``<CAPTION_TO_PHRASE_GROUNDING>`` answer grounds (phrases get character
    spans in it); ``region`` is the box a ``<REGION_TO_DESCRIPTION>`` answer describes.
    """
    if task in CAPTION_TASKS:
        text = _clean(str(parsed))
        return [Text(CAPTION_TASKS[task], text, provenance)] if text else []  # type: ignore[arg-type]
    if task in BOX_TASKS:
        out: list[Annotation] = []
        for values, label in zip(parsed.get("bboxes", []), parsed.get("labels", []), strict=False):
            box = _box(values, width, height)
            if box is not None:
                out.append(Region(BOX_TASKS[task], box, _clean(label), provenance))  # type: ignore[arg-type]
        return out
    if task == OCR_REGION_TASK:
        out = []
        for quad, label in zip(parsed.get("quad_boxes", []), parsed.get("labels", []), strict=False):
            quad = tuple(min(max(float(v), 0.0), float(width if i % 2 == 0 else height)) for i, v in enumerate(quad))
            box, text = _box(quad_to_box(quad), width, height), _clean(label)
            if box is not None and text:
                out.append(Region("ocr_line", box, text, provenance, quad=quad))
        return out
    if task == REGION_DESCRIPTION_TASK:
        text = _clean(str(parsed))
        if region is None or not text:
            return []
        return [Region("region_caption", region, text, provenance)]
    if task == GROUNDING_TASK:
        return _phrases(parsed, width, height, provenance, caption)
    raise ValueError(f"unsupported Florence-2 task {task!r} (supported: {', '.join(SUPPORTED_TASKS)})")


def _phrases(parsed: Any, width: int, height: int, provenance: Provenance, caption: Text | None) -> list[Annotation]:
    """Group consecutive boxes of one label into a phrase and find its span in the caption."""
    if caption is None:
        return []
    grouped: list[tuple[str, list[tuple[float, float, float, float]]]] = []
    for values, label in zip(parsed.get("bboxes", []), parsed.get("labels", []), strict=False):
        label = _clean(label)
        box = _box(values, width, height)
        if not label or box is None:
            continue
        if grouped and grouped[-1][0] == label:
            grouped[-1][1].append(box)
        else:
            grouped.append((label, [box]))
    lowered, cursor, phrases = caption.text.lower(), 0, []
    for label, boxes in grouped:
        start = lowered.find(label.lower(), cursor)
        if start < 0:
            start = lowered.find(label.lower())
        if start < 0:
            continue  # the model grounded words that are not in the caption: nothing to anchor
        end = start + len(label)
        cursor = end
        regions = [GroundedRegion(box) for box in boxes]
        phrases.append(Phrase(caption.id, start, end, caption.text[start:end], regions, provenance))
    return phrases


def location_prompt(box: Sequence[float], width: int, height: int) -> str:
    """A box as Florence-2 location tokens, for tasks that take a region as input."""
    from schemas.geometry import quantize_points

    return "".join(f"<loc_{b}>" for b in quantize_points(list(box), width, height))
