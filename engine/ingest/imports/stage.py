"""Existing labels as a source: a specialist stage that adds what an annotations file says of each image.

``fld-engine run --annotations FILE`` places one such stage, named ``import:<file stem>``, before the profile's
specialists, so its annotations go through the filters like any specialist's, carry provenance source
``import:<stem>`` (model ``sha256:<first 16 hex digits of the file>``), and follow the refresh rules of a
specialist: its fingerprint hashes the file's bytes, so a refresh with the same file keeps the imported
annotations and a changed file re-imports them (the old ones go, by their source).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from engine.config.registry import SPECIALISTS
from engine.ingest.imports.formats import AnnotationFileError, ImportedEntry, ImportedObject, parse_annotation_file
from engine.ingest.imports.matching import EntryIndex
from engine.store.location import location
from schemas.fingerprint import canonical_hash
from schemas.records import Granularity, ImageRecord, Mask, Provenance, Region, Text
from schemas.stage import StageKind, WeightsCheck
from specialists.base import Specialist

IMPORT_BACKEND = "import"
# How a run's configuration names the stage class (a ``module:Class`` backend, engine/config/custom_stages.py):
# it is placed by ``--annotations``, not chosen by name in a profile.
IMPORT_STAGE_CLASS = "engine.ingest.imports.stage:ImportedAnnotations"
IMPORT_PREFIX = "import:"


@dataclass(frozen=True)
class ImportOptions:
    """``file``: the annotations file (path or URI); ``roots``: the run's inputs, which image paths in the file
    may be relative to; ``caption_granularity``: what its captions are (``ingest.caption_granularity``);
    ``sha256``: the file's content as the run planned it (workers check they read the same bytes; a worker
    keeps a set-up stage per configuration, so a changed file is a new configuration)."""

    file: str
    roots: tuple[str, ...] = ()
    caption_granularity: Granularity = "brief"
    sha256: str = ""


class ImportedAnnotations(Specialist):
    """A specialist whose "model" is a file: no pixels, nothing to load but the file's entries."""

    kind: ClassVar[StageKind] = SPECIALISTS
    backend: ClassVar[str] = IMPORT_BACKEND
    Options: ClassVar[type] = ImportOptions
    produces: ClassVar[frozenset[str]] = frozenset({"texts", "regions"})
    needs_pixels: ClassVar[bool] = False
    holds_model: ClassVar[bool] = False

    def __init__(self, name: str, options: ImportOptions, resources: Any = None) -> None:
        super().__init__(name, options, resources)
        self._data: bytes | None = None
        self._sha256: str | None = None
        self.index: EntryIndex | None = None

    def _read(self) -> bytes:
        if self._data is None:
            data = location(self.options.file).read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if self.options.sha256 and digest != self.options.sha256:
                raise AnnotationFileError(f"{self.options.file}: changed while the run was using it; run again")
            self._data, self._sha256 = data, digest
        return self._data

    @property
    def sha256(self) -> str:
        if self.options.sha256:
            return self.options.sha256
        if self._sha256 is None:
            self._read()
        assert self._sha256 is not None
        return self._sha256

    @property
    def model_id(self) -> str:
        return f"sha256:{self.sha256[:16]}"

    def fingerprint(self) -> str:
        """The file's content and how its captions are read: a changed file re-imports; a moved copy of it, or
        another set of inputs (``roots``), does not."""
        plain = {"backend": self.backend, "sha256": self.sha256}
        return canonical_hash({**plain, "caption_granularity": self.options.caption_granularity})

    def check_weights(self) -> WeightsCheck:
        found = location(self.options.file).is_file()
        return WeightsCheck(self.name, self.backend, self.options.file, (self.options.file,), found, "annotations file")

    def load(self) -> None:
        self.index = EntryIndex(parse_annotation_file(self._read(), self.options.file))
        self._data = None  # parsed: the bytes are no longer needed (the hash is kept)

    def process(self, records: list[ImageRecord], images: list[np.ndarray] | None) -> None:
        self.setup()
        self.annotate([], records)

    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        """Add each record's entry (found by its paths) as regions and texts; ``images`` are not needed."""
        assert self.index is not None
        provenance = Provenance(self.name, self.model_id, 0)
        for record in records:
            found = self.index.find(record.source_uris or [record.source_uri], self.options.roots)
            if found is None:
                continue
            entry = self.index.entries[found]
            record.regions.extend(imported_regions(entry, record.width, record.height, provenance))
            record.texts.extend(imported_texts(entry, self.options.caption_granularity, provenance))


def imported_texts(entry: ImportedEntry, granularity: Granularity, provenance: Provenance) -> list[Text]:
    """One text per distinct non-empty caption of ``entry``."""
    kept = dict.fromkeys(c.strip() for c in entry.captions if c and c.strip())
    return [Text(granularity, caption, provenance) for caption in kept]


def imported_regions(entry: ImportedEntry, width: int, height: int, provenance: Provenance) -> list[Region]:
    """``entry``'s objects as object regions of a ``width`` x ``height`` image (scaled when the file labelled the
    image at another size, clipped to the image; boxes empty after clipping are left out)."""
    sx = width / entry.width if entry.width else 1.0
    sy = height / entry.height if entry.height else 1.0
    regions = []
    for obj in entry.objects:
        x0, y0, x1, y1 = obj.bbox
        box = (
            min(max(x0 * sx, 0.0), width),
            min(max(y0 * sy, 0.0), height),
            min(max(x1 * sx, 0.0), width),
            min(max(y1 * sy, 0.0), height),
        )
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        mask, polygon = _segmentation(obj, sx, sy, width, height)
        regions.append(Region("object", box, obj.label, provenance, obj.score, mask=mask, polygon=polygon))
    return regions


def _segmentation(
    obj: ImportedObject, sx: float, sy: float, width: int, height: int
) -> tuple[Mask | None, tuple[float, ...] | None]:
    """COCO polygons (scaled) or RLE (at the image's own size) as a mask and the largest polygon."""
    from pycocotools import mask as coco_mask

    segmentation = obj.segmentation
    if not segmentation:
        return None, None
    if isinstance(segmentation, list):
        polygons = [
            [v * (sx if i % 2 == 0 else sy) for i, v in enumerate(p)]
            for p in segmentation
            if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
        ]
        if not polygons:
            return None, None
        rle = coco_mask.merge(coco_mask.frPyObjects(polygons, height, width))
        largest = max(polygons, key=len)
        clipped = tuple(min(max(v, 0.0), width if i % 2 == 0 else height) for i, v in enumerate(largest))
        return Mask((height, width), rle["counts"].decode("ascii")), clipped
    if isinstance(segmentation, dict) and list(segmentation.get("size", [])) == [height, width]:
        counts = segmentation["counts"]
        rle = coco_mask.frPyObjects(segmentation, height, width) if isinstance(counts, list) else segmentation
        counts = rle["counts"]
        return Mask((height, width), counts.decode("ascii") if isinstance(counts, bytes) else str(counts)), None
    return None, None  # an RLE of another size cannot be scaled without decoding; the box is kept


def import_stage_name(file: str) -> str:
    """``import:<file stem>``: the stage's name and its annotations' provenance source."""
    base = file.rstrip("/").replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return IMPORT_PREFIX + stem
