"""Validation of annotation records: malformed rows are rejected with a message naming the field."""

from __future__ import annotations

import math

from schemas.records import GRANULARITIES, REGION_KINDS, ImageRecord


class SchemaError(ValueError):
    """A record does not satisfy the annotation schema."""


def _check_box(box: tuple[float, ...], width: int, height: int, where: str, tolerance: float = 0.5) -> None:
    if len(box) != 4:
        raise SchemaError(f"{where}: bbox must have 4 values, got {len(box)}")
    if not all(math.isfinite(v) for v in box):
        raise SchemaError(f"{where}: bbox {list(box)} has a non-finite value")
    x0, y0, x1, y1 = box
    if min(box) < -tolerance:
        raise SchemaError(f"{where}: bbox {list(box)} has a negative coordinate")
    if x1 < x0 or y1 < y0:
        raise SchemaError(f"{where}: bbox {list(box)} is inverted (x1 < x0 or y1 < y0)")
    if x1 > width + tolerance or y1 > height + tolerance:
        raise SchemaError(f"{where}: bbox {list(box)} lies outside the {width}x{height} image")


def validate_record(record: ImageRecord) -> None:
    """Raise :class:`SchemaError` naming the first malformed field of ``record``."""
    where = f"image {record.image_id[:12]} ({record.source_uri})"
    if len(record.image_id) != 64:
        raise SchemaError(f"{where}: image_id must be a sha256 hex digest")
    if record.width <= 0 or record.height <= 0:
        raise SchemaError(f"{where}: width and height must be positive, got {record.width}x{record.height}")
    for i, text in enumerate(record.texts):
        if text.granularity not in GRANULARITIES:
            raise SchemaError(f"{where}: texts[{i}].granularity {text.granularity!r} is not one of {GRANULARITIES}")
    for i, region in enumerate(record.regions):
        at = f"{where}: regions[{i}]"
        if region.kind not in REGION_KINDS:
            raise SchemaError(f"{at}.kind {region.kind!r} is not one of {REGION_KINDS}")
        _check_box(region.bbox, record.width, record.height, at)
        if region.quad is not None and len(region.quad) != 8:
            raise SchemaError(f"{at}.quad must have 8 values, got {len(region.quad)}")
        if region.polygon is not None and (len(region.polygon) < 6 or len(region.polygon) % 2):
            raise SchemaError(f"{at}.polygon must have an even number (>= 6) of values")
        if region.mask is not None and region.mask.size != (record.height, record.width):
            raise SchemaError(
                f"{at}.mask size {region.mask.size} differs from the image {record.height}x{record.width}"
            )
    texts = {text.id: text.text for text in record.texts}
    for i, phrase in enumerate(record.phrases):
        at = f"{where}: phrases[{i}]"
        if phrase.text_id not in texts:
            raise SchemaError(f"{at}.text_id {phrase.text_id!r} names no text of this image")
        text = texts[phrase.text_id]
        if not 0 <= phrase.start < phrase.end <= len(text):
            raise SchemaError(f"{at}: span [{phrase.start}, {phrase.end}) lies outside its text of length {len(text)}")
        if text[phrase.start : phrase.end] != phrase.phrase:
            raise SchemaError(
                f"{at}: phrase {phrase.phrase!r} differs from its span {text[phrase.start : phrase.end]!r}"
            )
        for j, grounded in enumerate(phrase.regions):
            _check_box(grounded.bbox, record.width, record.height, f"{at}.regions[{j}]")
