"""A representative's annotations exported for its near-duplicates too (``export --include-near-duplicates``).

A near-duplicate was not annotated: curation skipped it as a copy of its group's representative
(``skipped/`` table, rule ``near_duplicate``). Its copies are resized, recompressed or slightly cropped
versions of the same picture, so the representative's annotations, scaled from its size to the copy's
(boxes, quads, polygons; masks resampled), stand for the copy's. Off by default: a crop of a few percent
shifts every box a little, and a corpus may rather hold one example per picture.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from engine.store.location import Where
from engine.store.manifest import Manifest
from engine.store.reader import read_shard
from filters.curation.selection import NEAR_DUPLICATE
from schemas.masks import decode_mask, encode_mask
from schemas.records import GroundedRegion, ImageMeasures, ImageRecord, Mask, Region


@dataclass(frozen=True)
class NearDuplicate:
    """A skipped copy: its identity, every path of its bytes and its size."""

    image_id: str
    source_uri: str
    source_uris: tuple[str, ...]
    measures: ImageMeasures


def near_duplicates_of(root: Where, manifest: Manifest) -> dict[str, list[NearDuplicate]]:
    """Representative image id -> its skipped copies (with measures) in ``manifest``'s skipped table."""
    copies: dict[str, list[NearDuplicate]] = {}
    for shard in manifest.skipped:
        for row in read_shard(root, shard).to_pylist():
            if row["rule"] != NEAR_DUPLICATE or not row["duplicate_of"] or not row["measures"]:
                continue
            uris = tuple(row["source_uris"] or [row["source_uri"]])
            copy = NearDuplicate(row["image_id"], row["source_uri"], uris, ImageMeasures.from_dict(row["measures"]))
            copies.setdefault(row["duplicate_of"], []).append(copy)
    return copies


def with_near_duplicates(
    records: Iterable[ImageRecord], copies: dict[str, list[NearDuplicate]]
) -> Iterator[ImageRecord]:
    """Each record, then one record per copy of it carrying its annotations scaled to the copy's size."""
    for record in records:
        yield record
        for copy in copies.get(record.image_id, []):
            yield annotated_copy(record, copy)


def annotated_copy(record: ImageRecord, copy: NearDuplicate) -> ImageRecord:
    """``record``'s annotations on ``copy``: geometry scaled by the ratio of their sizes, per axis."""
    width, height = copy.measures.width, copy.measures.height
    sx, sy = width / max(record.width, 1), height / max(record.height, 1)
    scaled = ImageRecord.from_row(record.to_row())  # a deep copy
    scaled.image_id, scaled.source_uri, scaled.source_uris = copy.image_id, copy.source_uri, list(copy.source_uris)
    scaled.width, scaled.height, scaled.measures, scaled.metadata = width, height, copy.measures, None
    for region in scaled.regions:
        _scale_region(region, sx, sy, width, height)
    for phrase in scaled.phrases:
        for grounded in phrase.regions:
            _scale_region(grounded, sx, sy, width, height)
    return scaled


def _scale_region(region: Region | GroundedRegion, sx: float, sy: float, width: int, height: int) -> None:
    region.bbox = _scaled_points(region.bbox, sx, sy)  # type: ignore[assignment]
    if region.polygon is not None:
        region.polygon = _scaled_points(region.polygon, sx, sy)
    if isinstance(region, Region) and region.quad is not None:
        region.quad = _scaled_points(region.quad, sx, sy)
    if region.mask is not None:
        region.mask = scaled_mask(region.mask, width, height)


def _scaled_points(values: Sequence[float], sx: float, sy: float) -> tuple[float, ...]:
    """Flat (x, y, x, y, ...) coordinates scaled per axis."""
    return tuple(float(v) * (sx if i % 2 == 0 else sy) for i, v in enumerate(values))


def scaled_mask(mask: Mask, width: int, height: int) -> Mask:
    """``mask`` resampled (nearest neighbour) to ``width`` x ``height``."""
    binary = decode_mask(mask).astype(np.uint8)
    return encode_mask(cv2.resize(binary, (width, height), interpolation=cv2.INTER_NEAREST).astype(bool))
