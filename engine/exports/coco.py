"""COCO export: instances JSON (boxes, RLE masks or polygons, provenance) and captions JSON, streamed.

Images and annotations are appended to line files while the records stream past and joined into
the final JSON at the end, so memory holds one record at a time plus the category table.
Region kinds other than ``object`` are categories of their own (``ocr_line``...), with the region
text kept in ``fld_text``; object regions are categorised by their label. With the ``phrase`` task,
each region a phrase is grounded to is an instance of the category named by the phrase (these carry
the segmentation masks in an FLD-5B style corpus).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from engine.exports.images import source_bytes, write_image
from engine.exports.report import ExportReport
from engine.ingest.decode import BadImage
from schemas.masks import mask_area, to_coco_rle
from schemas.records import REGION_KINDS, GroundedRegion, ImageRecord, Phrase, Region

DEFAULT_KINDS: tuple[str, ...] = ("object",)
PHRASE_TASK = "phrase"
COCO_TASKS: tuple[str, ...] = (*REGION_KINDS, PHRASE_TASK)
INSTANCES_NAME = "instances.json"
CAPTIONS_NAME = "captions.json"


def category_name(region: Region) -> str:
    """Objects by their label (lower-cased, trimmed); other kinds by their kind."""
    return region.text.strip().lower() if region.kind == "object" and region.text.strip() else region.kind


def check_kinds(kinds: Sequence[str], allowed: Sequence[str] = REGION_KINDS) -> tuple[str, ...]:
    unknown = [k for k in kinds if k not in allowed]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; choose from {list(allowed)}")
    return tuple(kinds)


def coco_annotation(region: Region, annotation_id: int, image_id: int, category_id: int) -> dict[str, Any]:
    """One COCO instance of a region with its provenance; segmentation only where it has a mask or polygon."""
    entry = _instance(region, annotation_id, image_id, category_id)
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
    phrase: Phrase, grounded: GroundedRegion, annotation_id: int, image_id: int, category_id: int
) -> dict[str, Any]:
    """One COCO instance of a region a phrase is grounded to, with the phrase's provenance."""
    entry = _instance(grounded, annotation_id, image_id, category_id)
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


def _instance(region: Region | GroundedRegion, annotation_id: int, image_id: int, category_id: int) -> dict[str, Any]:
    x0, y0, x1, y1 = region.bbox
    entry: dict[str, Any] = {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "area": (x1 - x0) * (y1 - y0),
        "iscrowd": 0,
    }
    if region.mask is not None:
        rle = to_coco_rle(region.mask)
        entry["segmentation"] = {"size": rle["size"], "counts": region.mask.counts}
        entry["area"] = float(mask_area(region.mask))
    elif region.polygon is not None:
        entry["segmentation"] = [list(region.polygon)]
    if region.score is not None:
        entry["score"] = float(region.score)
    return entry


class CocoWriter:
    """Streams records into ``<folder>/images``, ``instances.json`` and ``captions.json``."""

    def __init__(self, folder: Path, kinds: Sequence[str] = DEFAULT_KINDS, report: ExportReport | None = None):
        self.folder = folder
        self.kinds = check_kinds(kinds, COCO_TASKS)
        self.report = report or ExportReport("coco", folder)
        self.categories: dict[str, int] = {}
        self._next_image = self._next_annotation = self._next_caption = 1
        folder.mkdir(parents=True, exist_ok=True)
        self._parts = folder / ".parts"
        self._parts.mkdir(exist_ok=True)
        # The part files stay open across add() calls; close() (or an error in __exit__) closes them.
        self._files = contextlib.ExitStack()
        self._images, self._instances, self._captions = (
            self._open_part(name) for name in ("images.jsonl", "instances.jsonl", "captions.jsonl")
        )

    def _open_part(self, name: str) -> TextIO:
        return self._files.enter_context(open(self._parts / name, "w"))

    def __enter__(self) -> CocoWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._files.close()

    def add(self, record: ImageRecord) -> bool:
        """Write one image, its regions of the chosen kinds (and grounded phrases) and its texts."""
        self.report.records += 1
        data = source_bytes(record)
        if data is None:
            self.report.skip("source missing or changed since annotation")
            return False
        try:
            file_name = write_image(record, data, self.folder / "images")
        except BadImage as error:
            self.report.skip(f"undecodable image ({error.reason})")
            return False
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
        self._images.write(json.dumps(image) + "\n")
        self.report.images += 1
        for region in record.regions:
            if region.kind in self.kinds:
                entry = coco_annotation(region, self._next_annotation, image_id, self._category(category_name(region)))
                self._write_instance(entry)
        if PHRASE_TASK in self.kinds:
            for phrase in record.phrases:
                category_id = self._category(phrase.phrase.strip().lower() or PHRASE_TASK)
                for grounded in phrase.regions:
                    self._write_instance(
                        grounded_annotation(phrase, grounded, self._next_annotation, image_id, category_id)
                    )
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
            self._captions.write(json.dumps(caption) + "\n")
            self._next_caption += 1
            self.report.annotations[f"captions {text.granularity}"] += 1
        return True

    def _category(self, name: str) -> int:
        return self.categories.setdefault(name, len(self.categories) + 1)

    def _write_instance(self, entry: dict[str, Any]) -> None:
        self._instances.write(json.dumps(entry) + "\n")
        self._next_annotation += 1
        self.report.annotations[f"instances {entry['fld_kind']}"] += 1

    def close(self) -> ExportReport:
        """Join the parts into the two COCO JSON files and remove the parts."""
        self._files.close()
        categories = [
            {"id": cid, "name": name, "supercategory": name if name in COCO_TASKS else "object"}
            for name, cid in sorted(self.categories.items(), key=lambda item: item[1])
        ]
        info = {"description": "fld-engine export", "version": "1.0"}
        self._join(
            self.folder / INSTANCES_NAME,
            info,
            categories,
            [("images", "images.jsonl"), ("annotations", "instances.jsonl")],
        )
        self._join(
            self.folder / CAPTIONS_NAME, info, None, [("images", "images.jsonl"), ("annotations", "captions.jsonl")]
        )
        self.report.files = {
            INSTANCES_NAME: self._next_annotation - 1,
            CAPTIONS_NAME: self._next_caption - 1,
        }
        shutil.rmtree(self._parts)
        return self.report

    def _join(self, path: Path, info: dict, categories: list | None, arrays: list[tuple[str, str]]) -> None:
        """Write ``path`` from the part files; captions files have no categories (pycocotools expects none)."""
        partial = path.with_name(path.name + ".partial")
        with open(partial, "w") as out:
            out.write('{"info": ' + json.dumps(info) + ', "licenses": []')
            if categories is not None:
                out.write(', "categories": ' + json.dumps(categories))
            for key, part in arrays:
                out.write(f', "{key}": [')
                with open(self._parts / part) as lines:
                    for index, line in enumerate(lines):
                        out.write(("," if index else "") + line.rstrip("\n"))
                out.write("]")
            out.write("}\n")
        partial.replace(path)


def export_coco(
    records: Iterable[ImageRecord], destination: Path, kinds: Sequence[str] = DEFAULT_KINDS
) -> ExportReport:
    """Write a COCO dataset of ``records`` (region ``kinds`` as instances, every text as a caption)."""
    started = time.perf_counter()
    with CocoWriter(destination, kinds) as writer:
        for record in records:
            writer.add(record)
        report = writer.close()
    report.seconds = time.perf_counter() - started
    return report
