"""Reading a published version: exactly the shards its manifest lists, streamed batch by batch.

Shards are read with pyarrow datasets on the dataset's own filesystem (local or object store).
Every shard's size is checked against the manifest before it is read, so a missing, truncated or
replaced shard is reported as one :class:`~engine.errors.OutputError` naming it, whenever in the
pass it is met (checksums are checked by :mod:`engine.store.integrity` on request).
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from engine.errors import OutputError
from engine.store.integrity import size_problem
from engine.store.location import Location, Where, location
from engine.store.manifest import require_manifest
from engine.store.writer import ShardInfo
from schemas.arrow import ANNOTATION_SCHEMA, QUARANTINE_SCHEMA, SKIPPED_SCHEMA, conform
from schemas.records import ImageRecord


def shard_error(root: Where, shard_path: str, error: BaseException) -> OutputError:
    """The one-line error for a shard listed by a manifest that cannot be read."""
    if isinstance(error, FileNotFoundError):
        return OutputError(f"{location(root)}: shard {shard_path} listed in the manifest is missing")
    detail = " ".join(str(error).split())  # one line, whatever the reader's message looks like
    return OutputError(f"{location(root)}: shard {shard_path} is unreadable ({detail})")


def check_size(root: Location, shard: ShardInfo) -> None:
    problem = size_problem(root, shard)
    if problem is not None:
        raise OutputError(f"{root}: {problem}")


def _shard_dataset(root: Location, shards: list[ShardInfo], schema: pa.Schema) -> pads.Dataset:
    for shard in shards:
        check_size(root, shard)
    return pads.dataset(
        [(root / s.path).path for s in shards], schema=schema, format="parquet", filesystem=root.filesystem
    )


def version_dataset(root: Where, version: int | None = None, *, quarantine: bool = False) -> pads.Dataset:
    """A pyarrow dataset over one version's annotation (or quarantine) shards, their sizes checked."""
    root = location(root)
    manifest = require_manifest(root, version)
    shards = manifest.quarantine if quarantine else manifest.shards
    return _shard_dataset(root, shards, QUARANTINE_SCHEMA if quarantine else ANNOTATION_SCHEMA)


def iter_batches(
    root: Where,
    version: int | None = None,
    *,
    columns: list[str] | None = None,
    batch_size: int = 256,
    quarantine: bool = False,
) -> Iterator[pa.RecordBatch]:
    """Stream one version's annotation (or quarantine) rows as record batches, shard by shard."""
    root = location(root)
    manifest = require_manifest(root, version)
    shards = manifest.quarantine if quarantine else manifest.shards
    schema = QUARANTINE_SCHEMA if quarantine else ANNOTATION_SCHEMA
    for shard in shards:
        try:
            batches = _shard_dataset(root, [shard], schema).to_batches(columns=columns, batch_size=batch_size)
            batch = next(batches, None)
            while batch is not None:
                yield batch
                batch = next(batches, None)
        except (OSError, pa.ArrowException) as error:
            raise shard_error(root, shard.path, error) from None


def read_skipped(root: Where, version: int | None = None) -> pa.Table:
    """One version's skipped table (good images curation did not annotate), sorted by ``source_uri`` (its shards
    are each sorted, one or more per image-id partition); empty for versions before it."""
    root = location(root)
    manifest = require_manifest(root, version)
    tables = [conform(read_shard(root, shard), SKIPPED_SCHEMA) for shard in manifest.skipped]
    if not tables:
        return SKIPPED_SCHEMA.empty_table()
    return pa.concat_tables(tables).cast(SKIPPED_SCHEMA).sort_by("source_uri")


def read_version(root: Where, version: int | None = None, columns: list[str] | None = None) -> pa.Table:
    """One version's annotation rows as a table (small datasets; prefer :func:`iter_records`)."""
    return version_dataset(root, version).to_table(columns=columns)


def iter_records(root: Where, version: int | None = None, batch_size: int = 256) -> Iterator[ImageRecord]:
    """Stream a version's rows as :class:`ImageRecord` objects without loading the whole dataset."""
    for batch in iter_batches(root, version, batch_size=batch_size):
        for row in batch.to_pylist():
            yield ImageRecord.from_row(row)


def shard_schema(root: Where, shard: ShardInfo) -> pa.Schema:
    """The schema a shard listed by a manifest was written with (its footer only)."""
    root = location(root)
    check_size(root, shard)
    try:
        with (root / shard.path).open_input() as handle:
            return pq.read_schema(handle)
    except (OSError, pa.ArrowInvalid) as error:
        raise shard_error(root, shard.path, error) from None


def read_shard(root: Where, shard: ShardInfo, columns: list[str] | None = None) -> pa.Table:
    """Read one shard listed by a manifest, with a clear error if it is missing, resized or corrupt."""
    root = location(root)
    check_size(root, shard)
    try:
        with (root / shard.path).open_input() as handle:
            return pq.read_table(handle, columns=columns)
    except (OSError, pa.ArrowInvalid) as error:
        raise shard_error(root, shard.path, error) from None


def read_shards_where(
    root: Where, shards: list[ShardInfo], schema: pa.Schema, where: pads.Expression | None = None
) -> pa.Table:
    """The rows of ``shards`` (as ``schema``: a column a shard lacks is null) that ``where`` keeps (all of them
    without it); row groups whose statistics rule them out are not read."""
    root = location(root)
    if not shards:
        return schema.empty_table()
    try:
        return _shard_dataset(root, shards, schema).to_table(filter=where)
    except (OSError, pa.ArrowInvalid) as error:
        raise shard_error(root, ", ".join(s.path for s in shards), error) from None
