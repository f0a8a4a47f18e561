"""Reading a published version: exactly the shards its manifest lists, streamed batch by batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads

from engine.store.manifest import Manifest, require_manifest
from schemas.arrow import ANNOTATION_SCHEMA, QUARANTINE_SCHEMA
from schemas.records import ImageRecord


def version_dataset(root: Path, version: int | None = None, *, quarantine: bool = False) -> pads.Dataset:
    """A pyarrow dataset over one version's annotation (or quarantine) shards."""
    manifest = require_manifest(root, version)
    shards = manifest.quarantine if quarantine else manifest.shards
    schema = QUARANTINE_SCHEMA if quarantine else ANNOTATION_SCHEMA
    return pads.dataset([str(root / s.path) for s in shards], schema=schema, format="parquet")


def read_version(root: Path, version: int | None = None, columns: list[str] | None = None) -> pa.Table:
    """One version's annotation rows as a table (small datasets; prefer :func:`iter_records`)."""
    return version_dataset(root, version).to_table(columns=columns)


def iter_records(root: Path, version: int | None = None, batch_size: int = 256) -> Iterator[ImageRecord]:
    """Stream a version's rows as :class:`ImageRecord` objects without loading the whole dataset."""
    for batch in version_dataset(root, version).to_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            yield ImageRecord.from_row(row)


def manifest_of(root: Path, version: int | None = None) -> Manifest:
    return require_manifest(root, version)
