"""YOLO export: an ultralytics detection dataset (``images/{train,val}``, ``labels/...``, ``data.yaml``).

Each label line is ``class cx cy w h`` normalised to the image size. Classes are numbered in order of
first appearance; ``data.yaml`` is written last, when every class is known. The split keeps every
class with two or more labelled images in val (:mod:`engine.exports.class_split`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from engine.exports.class_split import OTHER, ClassCoverageSplit
from engine.exports.coco import DEFAULT_KINDS, category_name, check_kinds
from engine.exports.destination import export_folder
from engine.exports.images import export_bytes, source_bytes
from engine.exports.report import ExportReport
from engine.ingest.decode import BadImage
from engine.store.location import Where, location
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
    destination: Where,
    kinds: Sequence[str] = DEFAULT_KINDS,
    val_fraction: float = 0.1,
    keep_exif: bool = False,
) -> ExportReport:
    """Write an ultralytics dataset of ``records``; an empty validation split falls back to train.

    Images are split by :class:`ClassCoverageSplit`: written where their id puts them, then the few
    it moves are renamed into the other split, so val holds labels of every class it can.
    """
    started = time.perf_counter()
    kinds = check_kinds(kinds)
    report = ExportReport("yolo", location(destination))
    classes: dict[str, int] = {}
    splitter = ClassCoverageSplit(val_fraction)
    per_split = dict.fromkeys(SPLITS, 0)
    with export_folder(destination) as folder:
        for record in records:
            report.records += 1
            data = source_bytes(record)
            if data is None:
                report.skip("source missing or changed since annotation")
                continue
            try:
                payload, suffix = export_bytes(data, keep_exif)
            except BadImage as error:
                report.skip(f"undecodable image ({error.reason})")
                continue
            lines, labelled = [], set()
            for region in (r for r in record.regions if r.kind in kinds):
                class_id = classes.setdefault(category_name(region), len(classes))
                line = label_line(region, class_id, record.width, record.height)
                if line is None:
                    report.annotations["boxes outside the image"] += 1
                    continue
                lines.append(line)
                labelled.add(class_id)
                report.annotations[f"boxes {region.kind}"] += 1
            file_name = record.image_id[:16] + suffix
            split = splitter.add(file_name, record.image_id, frozenset(labelled))
            _write_pair(folder, split, file_name, payload, "".join(line + "\n" for line in lines))
            per_split[split] += 1
            report.images += 1
        moves = splitter.moves()
        for file_name, split in sorted(moves.items()):
            _move_pair(folder, file_name, OTHER[split], split)
            per_split[OTHER[split]] -= 1
            per_split[split] += 1
        if moves:
            report.annotations["images moved between splits"] = len(moves)
        data_yaml = {
            "path": location(destination).uri,
            "train": "images/train",
            "val": "images/val" if per_split["val"] else "images/train",
            "names": {class_id: name for name, class_id in classes.items()},
        }
        (folder / "data.yaml").write_text(yaml.safe_dump(data_yaml, sort_keys=False))
    report.files = {f"images/{split}": count for split, count in per_split.items()}
    report.seconds = time.perf_counter() - started
    return report


def _label_name(file_name: str) -> str:
    return Path(file_name).stem + ".txt"


def _write_pair(destination: Path, split: str, file_name: str, image: bytes, labels: str) -> None:
    """Write one image and its label file into ``split``."""
    for folder in ("images", "labels"):
        (destination / folder / split).mkdir(parents=True, exist_ok=True)
    (destination / "images" / split / file_name).write_bytes(image)
    (destination / "labels" / split / _label_name(file_name)).write_text(labels)


def _move_pair(destination: Path, file_name: str, source: str, target: str) -> None:
    """Move one image and its label file from split ``source`` to ``target``."""
    for folder, name in (("images", file_name), ("labels", _label_name(file_name))):
        (destination / folder / target).mkdir(parents=True, exist_ok=True)
        (destination / folder / source / name).rename(destination / folder / target / name)
