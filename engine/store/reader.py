"""Reading a published version: exactly the shards its manifest lists, streamed batch by batch.

Streaming readers go shard by shard, so a missing, truncated or corrupt shard is reported as one
:class:`~engine.errors.OutputError` naming it, whenever in the pass it is met.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from engine.errors import OutputError
from engine.store.manifest import require_manifest
from engine.store.writer import ShardInfo
from schemas.arrow import ANNOTATION_SCHEMA, QUARANTINE_SCHEMA
from schemas.records import ImageRecord


def shard_error(root: Path, shard_path: str, error: BaseException) -> OutputError:
    """The one-line error for a shard listed by a manifest that cannot be read."""
    if isinstance(error, FileNotFoundError):
        return OutputError(f"{root}: shard {shard_path} listed in the manifest is missing")
    return OutputError(f"{root}: shard {shard_path} is unreadable ({error})")


def version_dataset(root: Path, version: int | None = None, *, quarantine: bool = False) -> pads.Dataset:
    """A pyarrow dataset over one version's annotation (or quarantine) shards."""
    manifest = require_manifest(root, version)
    shards = manifest.quarantine if quarantine else manifest.shards
    schema = QUARANTINE_SCHEMA if quarantine else ANNOTATION_SCHEMA
    return pads.dataset([str(root / s.path) for s in shards], schema=schema, format="parquet")


def iter_batches(
    root: Path,
    version: int | None = None,
    *,
    columns: list[str] | None = None,
    batch_size: int = 256,
    quarantine: bool = False,
) -> Iterator[pa.RecordBatch]:
    """Stream one version's annotation (or quarantine) rows as record batches, shard by shard."""
    manifest = require_manifest(root, version)
    shards = manifest.quarantine if quarantine else manifest.shards
    schema = QUARANTINE_SCHEMA if quarantine else ANNOTATION_SCHEMA
    for shard in shards:
        try:
            batches = pads.dataset(str(root / shard.path), schema=schema, format="parquet").to_batches(
                columns=columns, batch_size=batch_size
            )
            batch = next(batches, None)
            while batch is not None:
                yield batch
                batch = next(batches, None)
        except (OSError, pa.ArrowException) as error:
            raise shard_error(root, shard.path, error) from None


def read_version(root: Path, version: int | None = None, columns: list[str] | None = None) -> pa.Table:
    """One version's annotation rows as a table (small datasets; prefer :func:`iter_records`)."""
    return version_dataset(root, version).to_table(columns=columns)


def iter_records(root: Path, version: int | None = None, batch_size: int = 256) -> Iterator[ImageRecord]:
    """Stream a version's rows as :class:`ImageRecord` objects without loading the whole dataset."""
    for batch in iter_batches(root, version, batch_size=batch_size):
        for row in batch.to_pylist():
            yield ImageRecord.from_row(row)


def read_shard(root: Path, shard: ShardInfo, columns: list[str] | None = None) -> pa.Table:
    """Read one shard listed by a manifest, with a clear error if it is missing or corrupt."""
    path = root / shard.path
    try:
        return pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowInvalid) as error:
        raise shard_error(root, shard.path, error) from None
