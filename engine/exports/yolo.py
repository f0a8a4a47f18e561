"""YOLO export: an ultralytics detection dataset (``images/{train,val}``, ``labels/...``, ``data.yaml``).

Each label line is ``class cx cy w h`` normalised to the image size. Classes are numbered in order of
first appearance; ``data.yaml`` is written last, when every class is known.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from engine.exports.coco import DEFAULT_KINDS, category_name, check_kinds
from engine.exports.images import source_bytes, write_image
from engine.exports.report import ExportReport
from engine.exports.split import split_of
from engine.ingest.decode import BadImage
from schemas.records import ImageRecord, Region

SPLITS = ("train", "val")


def label_line(region: Region, class_id: int, width: int, height: int) -> str | None:
    """A YOLO label line for ``region``; None for a box with no area inside the image."""
    x0, y0, x1, y1 = (
        min(max(region.bbox[0], 0.0), width),
        min(max(region.bbox[1], 0.0), height),
        min(max(region.bbox[2], 0.0), width),
        min(max(region.bbox[3], 0.0), height),
    )
    if x1 <= x0 or y1 <= y0:
        return None
    cx, cy = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height
    return f"{class_id} {cx:.6f} {cy:.6f} {(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}"


def export_yolo(
    records: Iterable[ImageRecord],
    destination: Path,
    kinds: Sequence[str] = DEFAULT_KINDS,
    val_fraction: float = 0.1,
) -> ExportReport:
    """Write an ultralytics dataset of ``records``; an empty validation split falls back to train."""
    started = time.perf_counter()
    kinds = check_kinds(kinds)
    report = ExportReport("yolo", destination)
    classes: dict[str, int] = {}
    per_split = dict.fromkeys(SPLITS, 0)
    for record in records:
        report.records += 1
        data = source_bytes(record)
        if data is None:
            report.skip("source missing or changed since annotation")
            continue
        split = split_of(record.image_id, val_fraction)
        try:
            file_name = write_image(record, data, destination / "images" / split)
        except BadImage as error:
            report.skip(f"undecodable image ({error.reason})")
            continue
        lines = []
        for region in (r for r in record.regions if r.kind in kinds):
            class_id = classes.setdefault(category_name(region), len(classes))
            line = label_line(region, class_id, record.width, record.height)
            if line is None:
                report.annotations["boxes outside the image"] += 1
                continue
            lines.append(line)
            report.annotations[f"boxes {region.kind}"] += 1
        labels = destination / "labels" / split
        labels.mkdir(parents=True, exist_ok=True)
        (labels / (Path(file_name).stem + ".txt")).write_text("".join(line + "\n" for line in lines))
        per_split[split] += 1
        report.images += 1
    data_yaml = {
        "path": str(destination.resolve()),
        "train": "images/train",
        "val": "images/val" if per_split["val"] else "images/train",
        "names": {class_id: name for name, class_id in classes.items()},
    }
    (destination / "data.yaml").write_text(yaml.safe_dump(data_yaml, sort_keys=False))
    report.files = {f"images/{split}": count for split, count in per_split.items()}
    report.seconds = time.perf_counter() - started
    return report
