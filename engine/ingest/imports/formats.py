"""Existing labels read from a file (``fld-engine run --annotations FILE``): pure parsers from bytes to entries.

Three formats:

- **COCO JSON** (``.json``): ``images`` (``id``, ``file_name``, ``width``, ``height``) and ``annotations``; an
  annotation with a ``bbox`` (``[x, y, w, h]`` pixels) is an object (label from ``categories``, optional
  ``score``, ``segmentation`` as polygons or RLE), one with a ``caption`` is an image-level text. One file may
  hold both (instances and captions files are the same format).
- **JSON Lines** (``.jsonl``): one object per line with a path (``path`` or ``file_name``) and a ``caption``.
- **Parquet** (``.parquet``): a table with the same two columns.

A file that holds none of these is a :class:`AnnotationFileError` naming the file and what is missing.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.ingest.sources import InputError

PATH_COLUMNS = ("path", "file_name")
CAPTION_COLUMN = "caption"
FORMATS = (".json", ".jsonl", ".parquet")


class AnnotationFileError(InputError):
    """An annotations file that cannot be imported (one line, naming the file)."""


@dataclass(frozen=True, slots=True)
class ImportedObject:
    """A labelled box in the file's pixels: ``bbox`` (x0, y0, x1, y1), ``segmentation`` as COCO gives it."""

    bbox: tuple[float, float, float, float]
    label: str
    score: float | None = None
    segmentation: Any = None


@dataclass(slots=True)
class ImportedEntry:
    """Everything the file says of one image: its name there, the size it was labelled at, objects, captions."""

    name: str
    width: int | None = None
    height: int | None = None
    objects: list[ImportedObject] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)


def parse_annotation_file(data: bytes, name: str) -> list[ImportedEntry]:
    """The entries of the annotations file ``name`` (its suffix says the format), merged by image name."""
    lower = name.lower()
    if lower.endswith(".json"):
        entries = parse_coco(_json(data, name), name)
    elif lower.endswith(".jsonl"):
        entries = _caption_rows(_jsonl(data, name), name)
    elif lower.endswith(".parquet"):
        entries = _caption_rows(_parquet(data, name), name)
    else:
        raise AnnotationFileError(f"{name}: not an annotations file (expected one of {', '.join(FORMATS)})")
    return _merged(entries)


def _json(data: bytes, name: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AnnotationFileError(f"{name}: not valid JSON ({error})") from None


def parse_coco(document: Any, name: str) -> list[ImportedEntry]:
    """COCO instances and/or captions: one entry per image listed in ``images``."""
    if not isinstance(document, dict) or not isinstance(document.get("images"), list):
        raise AnnotationFileError(f"{name}: not a COCO file (no 'images' list)")
    categories = {c.get("id"): str(c.get("name")) for c in document.get("categories") or [] if isinstance(c, dict)}
    entries: dict[Any, ImportedEntry] = {}
    for image in document["images"]:
        if not isinstance(image, dict) or "file_name" not in image or "id" not in image:
            raise AnnotationFileError(f"{name}: an entry of 'images' lacks 'id' or 'file_name': {image!r:.80}")
        entries[image["id"]] = ImportedEntry(
            str(image["file_name"]), _int(image.get("width")), _int(image.get("height"))
        )
    for annotation in document.get("annotations") or []:
        entry = entries.get(annotation.get("image_id")) if isinstance(annotation, dict) else None
        if entry is None:
            raise AnnotationFileError(f"{name}: an annotation names no image of 'images': {annotation!r:.80}")
        if "caption" in annotation:
            entry.captions.append(str(annotation["caption"]))
        if "bbox" in annotation:
            entry.objects.append(_object(annotation, categories, name))
    return list(entries.values())


def _object(annotation: dict[str, Any], categories: dict[Any, str], name: str) -> ImportedObject:
    try:
        x, y, w, h = (float(v) for v in annotation["bbox"])
    except (TypeError, ValueError):
        raise AnnotationFileError(f"{name}: a bbox is not [x, y, width, height]: {annotation['bbox']!r:.80}") from None
    category = annotation.get("category_id")
    if category not in categories:
        raise AnnotationFileError(f"{name}: category_id {category!r} is not in 'categories'")
    score = annotation.get("score")
    return ImportedObject(
        (x, y, x + w, y + h),
        categories[category],
        None if score is None else float(score),
        annotation.get("segmentation"),
    )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _jsonl(data: bytes, name: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(data.decode("utf-8", errors="strict").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise AnnotationFileError(f"{name}: line {number} is not JSON ({error})") from None
        if not isinstance(row, dict):
            raise AnnotationFileError(f"{name}: line {number} is not a JSON object")
        rows.append(row)
    return rows


def _parquet(data: bytes, name: str) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except pa.ArrowException as error:
        raise AnnotationFileError(f"{name}: not a readable Parquet table ({error})") from None
    path = next((c for c in PATH_COLUMNS if c in table.column_names), None)
    wanted = [c for c in (path, CAPTION_COLUMN) if c is not None and c in table.column_names]
    return table.select(wanted).to_pylist()


def _caption_rows(rows: Iterable[dict[str, Any]], name: str) -> list[ImportedEntry]:
    entries = []
    for row in rows:
        path = next((row[c] for c in PATH_COLUMNS if row.get(c) is not None), None)
        if path is None or CAPTION_COLUMN not in row:
            raise AnnotationFileError(
                f"{name}: needs a path column ({' or '.join(PATH_COLUMNS)}) and a '{CAPTION_COLUMN}' column"
            )
        caption = row[CAPTION_COLUMN]
        entries.append(ImportedEntry(str(path), captions=[str(caption)] if caption else []))
    return entries


def _merged(entries: list[ImportedEntry]) -> list[ImportedEntry]:
    """One entry per image name (a caption table lists an image once per caption)."""
    by_name: dict[str, ImportedEntry] = {}
    for entry in entries:
        kept = by_name.setdefault(entry.name, ImportedEntry(entry.name, entry.width, entry.height))
        kept.objects.extend(entry.objects)
        kept.captions.extend(entry.captions)
    return list(by_name.values())
