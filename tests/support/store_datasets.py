"""Tiny datasets written straight through the store (no Ray, no model): for the version, checksum and
lock tests, locally and on the test S3 server."""

from __future__ import annotations

import pyarrow as pa

from engine.config.settings import WriterConfig
from engine.store.location import Where
from engine.store.manifest import Manifest, all_manifests, next_version_number, publish
from engine.store.writer import ShardInfo, ShardWriter
from schemas.arrow import ANNOTATION_SCHEMA
from schemas.records import ImageRecord

# One row per shard, and rows that differ only in same-length ids: every shard has the same size.
ONE_ROW_SHARDS = WriterConfig(rows_per_shard=1, row_group_rows=1)


def same_size_records(letters: str) -> list[ImageRecord]:
    """One record per letter, alike but for the letter (``aaaa...`` ids): their shards have equal sizes."""
    return [
        ImageRecord(letter * 64, f"/images/{letter}.png", 8, 8, "png", [f"/images/{letter}.png"]) for letter in letters
    ]


def write_shards(root: Where, prefix: str, records: list[ImageRecord]) -> list[ShardInfo]:
    writer = ShardWriter(root, "annotations", prefix, ANNOTATION_SCHEMA, ONE_ROW_SHARDS)
    writer.write(pa.Table.from_pylist([r.to_row() for r in records], schema=ANNOTATION_SCHEMA))
    return writer.close()


def next_manifest(root: Where, run_id: str, shards: list[ShardInfo]) -> Manifest:
    """The manifest of the next version of ``root`` holding ``shards``, numbered as a run numbers it."""
    history = all_manifests(root)
    return Manifest.next(
        history[-1] if history else None,
        number=next_version_number(root, history),
        run_id=run_id,
        config_fingerprint="test",
        profile="test",
        stages={},
        stage_kinds={},
        models={},
        shards=shards,
        quarantine=[],
        tombstones=[],
        probe_index=None,
        extra={},
    )


def publish_next(root: Where, run_id: str, shards: list[ShardInfo]) -> Manifest:
    """Publish ``shards`` as the next version of ``root``."""
    manifest = next_manifest(root, run_id, shards)
    publish(root, manifest)
    return manifest
