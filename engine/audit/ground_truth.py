"""Accuracy against user ground truth in COCO format: COCOeval box and mask AP per category,
class-agnostic recall of ground-truth objects, and OCR character error rate.

Ground-truth images are matched to records by ``fld_image_id`` when the file has it (our own COCO
exports do), else by file name. Regions are scored as detections of the ground-truth category named
as our COCO export names them (objects by label, case-insensitive; other kinds by kind); other
labels are counted, not scored. Recall is class-agnostic, over every non-OCR region. Ground-truth
annotations with a ``utf8_string``, ``text`` or ``fld_text`` field are text ground truth for OCR.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from engine.audit.agreement import greedy_match
from engine.audit.cer import edit_distance
from engine.errors import OutputError
from engine.exports.coco import category_name
from schemas.boxes import iou_matrix
from schemas.records import ImageRecord

RECALL_IOU = 0.5
TEXT_FIELDS = ("utf8_string", "text")
OCR_KINDS = ("ocr_line", "ocr_word")


@dataclass
class GroundTruthResult:
    images_matched: int = 0
    images_in_ground_truth: int = 0
    box_ap: dict[str, float] = field(default_factory=dict)
    mask_ap: dict[str, float] = field(default_factory=dict)
    box_map: float | None = None
    mask_map: float | None = None
    objects: int = 0
    objects_found: int = 0
    unscored_labels: Counter[str] = field(default_factory=Counter)
    text_references: int = 0
    text_chars: int = 0
    text_edits: int = 0
    mask_note: str = ""

    @property
    def recall(self) -> float:
        return self.objects_found / self.objects if self.objects else 0.0

    @property
    def cer(self) -> float | None:
        return self.text_edits / self.text_chars if self.text_chars else None


def _xyxy(bbox: list[float]) -> list[float]:
    x, y, w, h = bbox
    return [x, y, x + w, y + h]


def _text_of(annotation: dict[str, Any]) -> str | None:
    """The true text of a text annotation (COCO-Text ``utf8_string``, ``text``, or our OCR exports' ``fld_text``)."""
    if annotation.get("fld_kind") in OCR_KINDS:
        return str(annotation.get("fld_text", ""))
    return next((str(annotation[k]) for k in TEXT_FIELDS if annotation.get(k) is not None), None)


def _quiet(function: Any, *args: Any) -> Any:
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args)


class GroundTruthCollector:
    """Feed records with :meth:`add`, then :meth:`result` runs COCOeval on the matched images."""

    def __init__(self, path: Path) -> None:
        try:
            self.coco = _quiet(COCO, str(path))
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
            raise OutputError(
                f"--ground-truth {path}: not a readable COCO file ({type(error).__name__}: {error})"
            ) from None
        images = self.coco.dataset.get("images", [])
        self.by_content = {i["fld_image_id"]: i["id"] for i in images if i.get("fld_image_id")}
        self.by_name = {Path(i["file_name"]).name: i["id"] for i in images if i.get("file_name")}
        self.category_ids = {c["name"].strip().lower(): c["id"] for c in self.coco.dataset.get("categories", [])}
        self.detections: list[dict[str, Any]] = []
        self.matched_images: list[int] = []
        self.summary = GroundTruthResult(images_in_ground_truth=len(images))

    def _image_of(self, record: ImageRecord) -> int | None:
        if record.image_id in self.by_content:
            return self.by_content[record.image_id]
        return next((self.by_name[Path(u).name] for u in record.source_uris if Path(u).name in self.by_name), None)

    def add(self, record: ImageRecord) -> None:
        gt_image = self._image_of(record)
        if gt_image is None:
            return
        self.matched_images.append(gt_image)
        for region in record.regions:
            name = category_name(region)
            category = self.category_ids.get(name)
            if category is None:
                self.summary.unscored_labels[name] += 1
                continue
            x0, y0, x1, y1 = region.bbox
            detection = {
                "image_id": gt_image,
                "category_id": category,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "score": 1.0 if region.score is None else float(region.score),
            }
            if region.mask is not None:
                detection["segmentation"] = {"size": list(region.mask.size), "counts": region.mask.counts}
            self.detections.append(detection)
        annotations = self.coco.imgToAnns.get(gt_image, [])
        texts = [a for a in annotations if _text_of(a) is not None]
        things = [a for a in annotations if _text_of(a) is None and not a.get("iscrowd")]
        self._recall(things, [r for r in record.regions if r.kind not in OCR_KINDS])
        self._ocr(texts, [r for r in record.regions if r.kind in OCR_KINDS])

    def _recall(self, things: list[dict[str, Any]], objects: list) -> None:
        truth = np.asarray([_xyxy(a["bbox"]) for a in things], dtype=np.float64).reshape(-1, 4)
        found = np.asarray([r.bbox for r in objects], dtype=np.float64).reshape(-1, 4)
        self.summary.objects += len(things)
        self.summary.objects_found += len(greedy_match(iou_matrix(truth, found), RECALL_IOU))

    def _ocr(self, texts: list[dict[str, Any]], regions: list) -> None:
        truth = np.asarray([_xyxy(a["bbox"]) for a in texts], dtype=np.float64).reshape(-1, 4)
        found = np.asarray([r.bbox for r in regions], dtype=np.float64).reshape(-1, 4)
        matched = {i: j for i, j, _ in greedy_match(iou_matrix(truth, found), RECALL_IOU)}
        for index, annotation in enumerate(texts):
            reference = _text_of(annotation) or ""
            hypothesis = regions[matched[index]].text if index in matched else ""
            self.summary.text_references += 1
            self.summary.text_chars += len(reference)
            self.summary.text_edits += edit_distance(reference, hypothesis)

    def result(self) -> GroundTruthResult:
        summary = self.summary
        summary.images_matched = len(set(self.matched_images))
        if not self.detections or not summary.images_matched:
            return summary
        with_masks = sum("segmentation" in d for d in self.detections)
        gt_annotations = self.coco.dataset.get("annotations", [])
        # Our COCO exports give box-only annotations their box as a polygon (fld_segmentation "box"): not a mask.
        gt_without_masks = sum("segmentation" not in a or a.get("fld_segmentation") == "box" for a in gt_annotations)
        # loadRes adds box polygons to detections without masks, so decide on mask AP first.
        detections = _quiet(self.coco.loadRes, self.detections)
        summary.box_map, summary.box_ap = self._evaluate(detections, "bbox")
        if gt_without_masks or with_masks < len(self.detections):
            summary.mask_note = (
                f"mask AP needs masks on every annotation: {gt_without_masks} ground-truth annotations and "
                f"{len(self.detections) - with_masks} of {len(self.detections)} detections have none"
            )
        else:
            summary.mask_map, summary.mask_ap = self._evaluate(detections, "segm")
        return summary

    def _evaluate(self, detections: COCO, kind: str) -> tuple[float, dict[str, float]]:
        evaluation = COCOeval(self.coco, detections, kind)
        evaluation.params.imgIds = sorted(set(self.matched_images))
        _quiet(evaluation.evaluate)
        _quiet(evaluation.accumulate)
        _quiet(evaluation.summarize)
        precision = evaluation.eval["precision"]  # [IoU thresholds, recall, category, area, max dets]
        per_category = {}
        for index, category_id in enumerate(evaluation.params.catIds):
            values = precision[:, :, index, 0, -1]
            values = values[values > -1]
            if values.size:
                per_category[self.coco.cats[category_id]["name"]] = float(values.mean())
        return float(evaluation.stats[0]), per_category
