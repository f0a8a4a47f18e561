"""Curation's work tables for tests: items with measures, and a corpus of copies, small images and references."""

from __future__ import annotations

import hashlib
import random

import pyarrow as pa

from engine.ingest.curation import REFERENCE_SCHEMA
from engine.ingest.probe import as_work_table
from schemas.records import ImageMeasures


def work_item(image_id: str, uri: str, width: int, height: int, phash: int, measured: bool = True) -> dict:
    measures = ImageMeasures(width, height, max(width, height) / min(width, height), phash, 0, 300.0, 120.0, 50.0, 0.2)
    return {
        "image_id": image_id,
        "source_uri": uri,
        "source_uris": [uri],
        "width": width,
        "height": height,
        "format": "jpeg",
        "measures": measures.to_dict() if measured else None,
    }


def work_table(*items: dict) -> pa.Table:
    return as_work_table(pa.Table.from_pylist(list(items)))


def flipped(value: int, rng: random.Random, bits: int) -> int:
    for bit in rng.sample(range(63), bits):
        value ^= 1 << bit
    return value


def curation_corpus(count: int, seed: int = 7) -> tuple[pa.Table, pa.Table]:
    """A work table sorted by id (copies of a few originals, some too small, some unmeasured) and references."""
    rng = random.Random(seed)
    originals = [(rng.getrandbits(63), rng.getrandbits(63)) for _ in range(count // 6)]  # int64 when inferred
    items, references = [], []
    for index in range(count):
        phash, dhash = originals[index % len(originals)]
        side = 8 if index % 17 == 0 else rng.choice([300, 600, 900])
        item = work_item(hashlib.sha256(str(index).encode()).hexdigest(), f"/in/{rng.random():.12f}.jpg", side, side, 0)
        if item["measures"] is not None and index % 23:
            item["measures"] |= {"phash": flipped(phash, rng, index % 4), "dhash": flipped(dhash, rng, 1)}
        else:
            item["measures"] = None
        (references if index % 11 == 0 else items).append(item)
    references += items[:3]  # references an image of this run's work are not judged twice
    work = work_table(*items).sort_by("image_id")
    return work, pa.Table.from_pylist(references).select(REFERENCE_SCHEMA.names).cast(REFERENCE_SCHEMA)
