"""COCO export: instances JSON (boxes, segmentations, provenance) and captions JSON per split, streamed.

Images and annotations are appended to line files while the records stream past and joined into
the final JSON at the end, so memory holds one record at a time plus the category table.
Region kinds other than ``object`` are categories of their own (``ocr_line``...), with the region
text kept in ``fld_text``; object regions are categorised by their label. With the ``phrase`` task,
each region a phrase is grounded to is an instance of the category named by the phrase (these carry
the segmentation masks in an FLD-5B style corpus).

Every instance has a ``segmentation``, so COCOeval's ``segm`` mode runs on any export: the RLE
mask, else the polygon, else the OCR quad as a polygon, else the box as a four-corner polygon (as
pycocotools' ``loadRes`` does for box results); ``fld_segmentation`` says which. Images are split
into ``instances_{train,val}.json`` and ``captions_{train,val}.json`` by image id
(:func:`engine.exports.split.split_of`); both splits share one category table.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from pycocotools import mask as coco_mask

from engine.exports.destination import export_folder
from engine.exports.images import source_bytes, write_image
from engine.exports.report import ExportReport
from engine.exports.split import split_of
from engine.ingest.decode import BadImage
from engine.store.location import Where, location
from schemas.geometry import box_to_quad
from schemas.masks import mask_area, to_coco_rle
from schemas.records import REGION_KINDS, GroundedRegion, ImageRecord, Phrase, Region

DEFAULT_KINDS: tuple[str, ...] = ("object",)
PHRASE_TASK = "phrase"
COCO_TASKS: tuple[str, ...] = (*REGION_KINDS, PHRASE_TASK)
SPLITS: tuple[str, ...] = ("train", "val")


def coco_file(kind: str, split: str | None) -> str:
    """``instances.json`` for an unsplit export (a review sample), ``instances_train.json`` for a split."""
    return f"{kind}.json" if split is None else f"{kind}_{split}.json"


def category_name(region: Region) -> str:
    """Objects by their label (lower-cased, trimmed); other kinds by their kind."""
    return region.text.strip().lower() if region.kind == "object" and region.text.strip() else region.kind


def check_kinds(kinds: Sequence[str], allowed: Sequence[str] = REGION_KINDS) -> tuple[str, ...]:
    unknown = [k for k in kinds if k not in allowed]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; choose from {list(allowed)}")
    return tuple(kinds)


def coco_annotation(
    region: Region, annotation_id: int, image_id: int, category_id: int, size: tuple[int, int]
) -> dict[str, Any]:
    """One COCO instance of a region (in an image of ``size`` = (width, height)) with its provenance."""
    entry = _instance(region, annotation_id, image_id, category_id, size)
    entry.update(
        fld_id=region.id,
        fld_kind=region.kind,
        fld_text=region.text,
        fld_source=region.provenance.source,
        fld_model=region.provenance.model,
        fld_round=region.provenance.round,
    )
    return entry


def grounded_annotation(
    phrase: Phrase,
    grounded: GroundedRegion,
    annotation_id: int,
    image_id: int,
    category_id: int,
    size: tuple[int, int],
) -> dict[str, Any]:
    """One COCO instance of a region a phrase is grounded to, with the phrase's provenance."""
    entry = _instance(grounded, annotation_id, image_id, category_id, size)
    entry.update(
        fld_id=phrase.id,
        fld_kind=PHRASE_TASK,
        fld_text=phrase.phrase,
        fld_text_id=phrase.text_id,
        fld_source=phrase.provenance.source,
        fld_model=phrase.provenance.model,
        fld_round=phrase.provenance.round,
    )
    return entry


def polygon_area(points: Sequence[float], size: tuple[int, int]) -> float:
    """A polygon's area as COCO counts it: the pixels of its rasterised mask."""
    width, height = size
    return float(coco_mask.area(coco_mask.merge(coco_mask.frPyObjects([list(points)], height, width))))


def _instance(
    region: Region | GroundedRegion, annotation_id: int, image_id: int, category_id: int, size: tuple[int, int]
) -> dict[str, Any]:
    x0, y0, x1, y1 = region.bbox
    entry: dict[str, Any] = {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "area": (x1 - x0) * (y1 - y0),
        "iscrowd": 0,
    }
    # pycocotools reads a 4-value list as a box, not a polygon: polygons need three points or more.
    polygon = region.polygon if region.polygon is not None and len(region.polygon) >= 6 else None
    quad = region.quad if isinstance(region, Region) and region.quad is not None and len(region.quad) >= 6 else None
    if region.mask is not None:
        rle = to_coco_rle(region.mask)
        entry["segmentation"] = {"size": rle["size"], "counts": region.mask.counts}
        entry["area"] = float(mask_area(region.mask))
        entry["fld_segmentation"] = "mask"
    elif polygon is not None or quad is not None:
        points = polygon if polygon is not None else quad
        entry["segmentation"] = [list(points)]
        entry["area"] = polygon_area(points, size)
        entry["fld_segmentation"] = "polygon" if polygon is not None else "quad"
    else:
        entry["segmentation"] = [list(box_to_quad(region.bbox))]
        entry["fld_segmentation"] = "box"
    if region.score is not None:
        entry["score"] = float(region.score)
    return entry


class _SplitParts:
    """The line files of one split's images, instances and captions, open while records stream past."""

    def __init__(self, parts: Path, split: str | None) -> None:
        self.split = split
        suffix = "" if split is None else f"_{split}"
        self.paths = {kind: parts / f"{kind}{suffix}.jsonl" for kind in ("images", "instances", "captions")}
        self.counts = dict.fromkeys(self.paths, 0)
        self._files = contextlib.ExitStack()
        self.files = {kind: self._open(path) for kind, path in self.paths.items()}

    def _open(self, path: Path) -> TextIO:
        return self._files.enter_context(open(path, "w", encoding="utf-8"))

    def write(self, kind: str, entry: dict[str, Any]) -> None:
        self.files[kind].write(json.dumps(entry) + "\n")
        self.counts[kind] += 1

    def close(self) -> None:
        self._files.close()


class CocoWriter:
    """Streams records into ``<folder>/images`` and the instances and captions JSON of each split.

    ``val_fraction`` None writes one unsplit ``instances.json`` and ``captions.json`` (a review
    sample); a number writes ``instances_train.json``, ``instances_val.json`` and the captions
    likewise, both always, an empty split with no images.
    """

    def __init__(
        self,
        folder: Path,
        kinds: Sequence[str] = DEFAULT_KINDS,
        report: ExportReport | None = None,
        val_fraction: float | None = None,
        keep_exif: bool = False,
    ):
        self.folder = folder
        self.kinds = check_kinds(kinds, COCO_TASKS)
        self.report = report or ExportReport("coco", folder)
        self.val_fraction = val_fraction
        self.keep_exif = keep_exif
        self.categories: dict[str, int] = {}
        self._next_image = self._next_annotation = self._next_caption = 1
        folder.mkdir(parents=True, exist_ok=True)
        self._parts = folder / ".parts"
        self._parts.mkdir(exist_ok=True)
        # The part files stay open across add() calls; close() (or an error in __exit__) closes them.
        names: tuple[str | None, ...] = (None,) if val_fraction is None else SPLITS
        self._splits = {name: _SplitParts(self._parts, name) for name in names}

    def __enter__(self) -> CocoWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for parts in self._splits.values():
            parts.close()

    def add(self, record: ImageRecord) -> bool:
        """Write one image, its regions of the chosen kinds (and grounded phrases) and its texts."""
        self.report.records += 1
        data = source_bytes(record)
        if data is None:
            self.report.skip("source missing or changed since annotation")
            return False
        try:
            file_name = write_image(record, data, self.folder / "images", self.keep_exif)
        except BadImage as error:
            self.report.skip(f"undecodable image ({error.reason})")
            return False
        parts = self._splits[None if self.val_fraction is None else split_of(record.image_id, self.val_fraction)]
        image_id = self._next_image
        self._next_image += 1
        image = {
            "id": image_id,
            "file_name": f"images/{file_name}",
            "width": record.width,
            "height": record.height,
            "fld_image_id": record.image_id,
            "fld_source_uri": record.source_uri,
        }
        parts.write("images", image)
        self.report.images += 1
        size = (record.width, record.height)
        for region in record.regions:
            if region.kind in self.kinds:
                category_id = self._category(category_name(region))
                self._write_instance(parts, coco_annotation(region, self._next_annotation, image_id, category_id, size))
        if PHRASE_TASK in self.kinds:
            for phrase in record.phrases:
                category_id = self._category(phrase.phrase.strip().lower() or PHRASE_TASK)
                for grounded in phrase.regions:
                    entry = grounded_annotation(phrase, grounded, self._next_annotation, image_id, category_id, size)
                    self._write_instance(parts, entry)
        for text in record.texts:
            caption = {
                "id": self._next_caption,
                "image_id": image_id,
                "caption": text.text,
                "fld_granularity": text.granularity,
                "fld_source": text.provenance.source,
                "fld_round": text.provenance.round,
                "fld_id": text.id,
            }
            parts.write("captions", caption)
            self._next_caption += 1
            self.report.annotations[f"captions {text.granularity}"] += 1
        return True

    def _category(self, name: str) -> int:
        return self.categories.setdefault(name, len(self.categories) + 1)

    def _write_instance(self, parts: _SplitParts, entry: dict[str, Any]) -> None:
        parts.write("instances", entry)
        self._next_annotation += 1
        self.report.annotations[f"instances {entry['fld_kind']}"] += 1

    def close(self) -> ExportReport:
        """Join the parts into the COCO JSON files of each split and remove the parts."""
        for parts in self._splits.values():
            parts.close()
        categories = [
            {"id": cid, "name": name, "supercategory": name if name in COCO_TASKS else "object"}
            for name, cid in sorted(self.categories.items(), key=lambda item: item[1])
        ]
        info = {"description": "fld-engine export", "version": "1.0"}
        for parts in self._splits.values():
            instances, captions = coco_file("instances", parts.split), coco_file("captions", parts.split)
            self._join(self.folder / instances, info, categories, parts, "instances")
            self._join(self.folder / captions, info, None, parts, "captions")
            self.report.files[instances] = parts.counts["instances"]
            self.report.files[captions] = parts.counts["captions"]
        shutil.rmtree(self._parts)
        return self.report

    def _join(self, path: Path, info: dict, categories: list | None, parts: _SplitParts, kind: str) -> None:
        """Write ``path`` from the part files; captions files have no categories (pycocotools expects none)."""
        partial = path.with_name(path.name + ".partial")
        with open(partial, "w", encoding="utf-8") as out:
            out.write('{"info": ' + json.dumps(info) + ', "licenses": []')
            if categories is not None:
                out.write(', "categories": ' + json.dumps(categories))
            for key, part in (("images", parts.paths["images"]), ("annotations", parts.paths[kind])):
                out.write(f', "{key}": [')
                with open(part, encoding="utf-8") as lines:
                    for index, line in enumerate(lines):
                        out.write(("," if index else "") + line.rstrip("\n"))
                out.write("]")
            out.write("}\n")
        partial.replace(path)


def export_coco(
    records: Iterable[ImageRecord],
    destination: Where,
    kinds: Sequence[str] = DEFAULT_KINDS,
    val_fraction: float = 0.1,
    keep_exif: bool = False,
) -> ExportReport:
    """Write a COCO dataset of ``records`` (region ``kinds`` as instances, every text as a caption),
    split into train and val by image id; a failed export removes what it wrote."""
    started = time.perf_counter()
    with (
        export_folder(destination) as folder,
        CocoWriter(folder, kinds, ExportReport("coco", location(destination)), val_fraction, keep_exif) as writer,
    ):
        for record in records:
            writer.add(record)
        report = writer.close()
    report.seconds = time.perf_counter() - started
    return report
