"""A small hand-built dataset version with every annotation type, drops, errors, quarantine and two rounds.

Written with the engine's own shard writer and manifest publisher, so audit and export tests do not
depend on the specialists, filters or refinement stages being present.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from engine.config.settings import WriterConfig
from engine.store.counts import merge_counts
from engine.store.manifest import Manifest, publish
from engine.store.writer import ShardWriter
from schemas.arrow import ANNOTATION_SCHEMA, QUARANTINE_SCHEMA, SCHEMA_VERSION, records_to_table
from schemas.masks import encode_mask
from schemas.records import (
    GroundedRegion,
    ImageRecord,
    Phrase,
    Provenance,
    Region,
    StageError,
    Text,
    TextAnalysis,
)

HAAR = Provenance("haar", "opencv-haar-frontalface", 0)
DETR = Provenance("detr", "tiny-detr", 0)
OCR = Provenance("ocr", "rapidocr", 0)
CAPTIONER = Provenance("captioner", "tiny-florence", 0)
GROUNDER = Provenance("grounder", "tiny-grounding", 0)
REFINED = Provenance("florence2", "tiny-florence@round1", 1)


@dataclass(frozen=True)
class DemoDataset:
    root: Path
    images: Path
    records: list[ImageRecord]


def rect_mask(width: int, height: int, box: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[box[1] : box[3], box[0] : box[2]] = True
    return mask


def write_image(folder: Path, name: str, width: int, height: int, boxes: list[tuple[int, int, int, int]]) -> Path:
    """A PNG with a coloured rectangle per box on a grey background."""
    pixels = np.full((height, width, 3), 90, dtype=np.uint8)
    for index, (x0, y0, x1, y1) in enumerate(boxes):
        pixels[y0:y1, x0:x1] = [(220, 40, 40), (40, 200, 60), (40, 80, 220)][index % 3]
    path = folder / name
    Image.fromarray(pixels).save(path, "PNG")
    return path


def _record(path: Path, width: int, height: int) -> ImageRecord:
    image_id = hashlib.sha256(path.read_bytes()).hexdigest()
    return ImageRecord(image_id=image_id, source_uri=str(path), width=width, height=height, format="png")


def build_records(folder: Path) -> list[ImageRecord]:
    """Three images: a car and a person (two detectors and the refined model agree on the car), a sign, a bare one."""
    folder.mkdir(parents=True, exist_ok=True)
    car, person = (8, 20, 48, 50), (60, 8, 84, 60)
    street = _record(write_image(folder, "street.png", 96, 64, [car, person]), 96, 64)
    brief = Text("brief", "A red car next to a person <b>.", CAPTIONER, score=0.9)
    brief.analysis = TextAnalysis(
        num_tokens=8, objects=["car", "person"], attributes=["red"], object_complexity=2.5, action_complexity=1.0
    )
    detailed = Text("detailed", "A small red car is parked on the left while a person stands on the right.", CAPTIONER)
    detailed.analysis = TextAnalysis(
        num_tokens=16,
        objects=["car", "left", "person", "right"],
        attributes=["small", "red"],
        actions=["park", "stand"],
        object_complexity=3.5,
        action_complexity=2.0,
    )
    refined_brief = Text("brief", "A red car beside a person.", REFINED, score=0.85)
    street.texts = [brief, detailed, refined_brief]
    car_mask = encode_mask(rect_mask(96, 64, car))
    street.regions = [
        Region("object", car, "car", HAAR, score=0.91, mask=car_mask),
        Region("object", (9, 21, 47, 51), "car", DETR, score=0.72),
        Region("object", person, "person", DETR, score=0.55),
        Region("object", (8, 19, 48, 49), "car", REFINED, score=0.8),
        Region("proposal", (0, 0, 90, 60), "", DETR, score=0.2),
    ]
    street.phrases = [
        Phrase(brief.id, 0, 9, "A red car", [GroundedRegion(car, 0.7, mask=car_mask)], GROUNDER, score=0.7),
        Phrase(brief.id, 18, 26, "a person", [GroundedRegion(person, 0.6)], GROUNDER, score=0.6),
    ]
    noise = Region("object", (70, 50, 72, 52), "it", DETR, score=0.05)
    duplicate = Region("object", (10, 22, 46, 50), "car", DETR, score=0.4)
    street.regions += [noise, duplicate]
    street.drop(noise, stage="region_filter", rule="min_score", value=0.05, threshold=0.3)
    street.drop(duplicate, stage="nms", rule="nms_iou", value=0.83, threshold=0.7, by=street.regions[1].id)

    sign = _record(write_image(folder, "sign.png", 80, 40, [(10, 10, 70, 30)]), 80, 40)
    sign.texts = [Text("brief", "A sign that says OPEN & <close>.", CAPTIONER, score=0.8)]
    sign.regions = [
        Region("ocr_line", (10, 10, 70, 30), "OPEN <script>", OCR, score=0.97, quad=(10, 10, 70, 10, 70, 30, 10, 30)),
        Region("ocr_word", (10, 10, 40, 30), "OPEN", OCR, score=0.98, quad=(10, 10, 40, 10, 40, 30, 10, 30)),
        Region("object", (10, 10, 70, 30), "sign", DETR, score=0.66),
    ]
    wordy = Text("brief", "image picture photo of stuff things objects items", CAPTIONER, score=0.3)
    sign.texts.append(wordy)
    sign.drop(wordy, stage="text_filter", rule="excessive_objects", value=7, threshold=5)

    bare = _record(write_image(folder, "bare.png", 48, 48, []), 48, 48)
    bare.errors = [StageError("detector", "RuntimeError: out of memory")]
    return [street, sign, bare]


def publish_records(
    root: Path, records: list[ImageRecord], quarantined: int = 1, version: int = 1, models: dict | None = None
) -> None:
    """Write ``records`` (two per shard) and a quarantine shard, and publish them as ``version``."""
    config = WriterConfig(rows_per_shard=2, row_group_rows=2)
    prefix = "demo" if version == 1 else f"demo-v{version}"
    writer = ShardWriter(root, "annotations", prefix, ANNOTATION_SCHEMA, config)
    writer.write(records_to_table(records))
    shards = writer.close()
    rows = [
        {"source_uri": f"/data/broken{i}.jpg", "image_id": None, "reason": "truncated", "detail": "", "size_bytes": 9}
        for i in range(quarantined)
    ]
    quarantine = ShardWriter(root, "quarantine", prefix, QUARANTINE_SCHEMA, config, count=None)
    quarantine.write(pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA))
    counts = merge_counts(s.counts for s in shards)
    counts["quarantined"] = {"total": quarantined, "truncated": quarantined}
    manifest = Manifest(
        version=version,
        run_id=prefix,
        created_at="2026-11-24T12:00:00Z",
        schema_version=SCHEMA_VERSION,
        config_fingerprint="demo",
        profile="demo",
        stages={},
        models=dict(models or {}),
        shards=shards,
        quarantine=quarantine.close(),
        counts=counts,
        parent=None if version == 1 else version - 1,
    )
    publish(root, manifest)


def build_demo_dataset(base: Path) -> DemoDataset:
    records = build_records(base / "images")
    publish_records(base / "dataset", records)
    return DemoDataset(base / "dataset", base / "images", records)
