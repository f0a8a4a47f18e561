"""Parquet shard writing: zstd, a target number of rows per shard, row groups sized for scanning.

A shard is serialized in memory, hashed (SHA-256) and written in one piece through its
:class:`~engine.store.location.Location`: whole or absent (locally a renamed temp file, in an
object store one upload). Every shard has a name no other run uses (the run id is in it), so
nothing is ever renamed or overwritten in an object store.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from engine.config.settings import WriterConfig
from engine.store.counts import Counts, count_annotations
from engine.store.location import Location, Where, location


@dataclass(frozen=True)
class ShardInfo:
    """A completed shard: its path relative to the dataset root, rows, size in bytes, annotation counts,
    and the SHA-256 of its bytes (empty in manifests written before checksums were recorded)."""

    path: str
    rows: int
    bytes: int
    counts: Counts = field(default_factory=dict)
    sha256: str = ""

    def to_dict(self) -> dict:
        data = {"path": self.path, "rows": self.rows, "bytes": self.bytes, "counts": self.counts}
        if self.sha256:
            data["sha256"] = self.sha256
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ShardInfo:
        return cls(data["path"], int(data["rows"]), int(data["bytes"]), data.get("counts", {}), data.get("sha256", ""))


@dataclass(frozen=True)
class Written:
    """What writing a file produced: its size and the SHA-256 of its bytes."""

    bytes: int
    sha256: str


def write_table(table: pa.Table, target: Location, config: WriterConfig) -> Written:
    """Write ``table`` as Parquet to ``target`` (whole or absent); return its size and checksum."""
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression=config.compression,
        compression_level=config.level(),
        row_group_size=config.row_group_rows,
        write_statistics=["image_id"] if "image_id" in table.column_names else True,
    )
    data = sink.getvalue()
    target.write_bytes(data)
    return Written(data.size, hashlib.sha256(data).hexdigest())


def write_shard(table: pa.Table, root: Location, relative: str, config: WriterConfig, counts: Counts) -> ShardInfo:
    """Write one shard at ``root / relative`` and describe it for a manifest."""
    written = write_table(table, root / relative, config)
    return ShardInfo(relative, table.num_rows, written.bytes, counts, written.sha256)


class ShardWriter:
    """Buffers Arrow batches and writes shards of ``rows_per_shard`` rows under ``root / folder``; a shard
    whose first row has waited ``max_shard_seconds`` is closed early (on the next write or :meth:`flush_due`),
    so a killed run loses at most that much work."""

    def __init__(
        self,
        root: Where,
        folder: str,
        prefix: str,
        schema: pa.Schema,
        config: WriterConfig,
        on_shard: Callable[[ShardInfo, pa.Table], None] | None = None,
        count: Callable[[pa.Table], Counts] | None = count_annotations,
    ) -> None:
        self.root, self.folder, self.prefix = location(root), folder, prefix
        self.schema, self.config = schema, config
        self.on_shard, self.count = on_shard, count
        self.shards: list[ShardInfo] = []
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._pending_since: float | None = None

    def write(self, batch: pa.Table) -> None:
        batch = batch.select(self.schema.names)
        # Casting nested columns costs even when types already match (most batches): then only set metadata.
        if batch.schema.equals(self.schema):
            batch = batch.replace_schema_metadata(self.schema.metadata)
        else:
            batch = batch.cast(self.schema)
        if batch.num_rows == 0:
            return
        if self._pending_since is None:
            self._pending_since = time.monotonic()
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        while self._pending_rows >= self.config.rows_per_shard:
            combined = pa.concat_tables(self._pending)
            self._flush(combined.slice(0, self.config.rows_per_shard))
            rest = combined.slice(self.config.rows_per_shard)
            self._pending, self._pending_rows = ([rest] if rest.num_rows else []), rest.num_rows
            self._pending_since = time.monotonic() if rest.num_rows else None
        self.flush_due()

    def flush_due(self) -> bool:
        """Close the pending shard if its first row has waited ``max_shard_seconds``; whether it did."""
        since = self._pending_since
        if since is None or time.monotonic() - since < self.config.max_shard_seconds:
            return False
        self.close()
        return True

    def close(self) -> list[ShardInfo]:
        if self._pending_rows:
            self._flush(pa.concat_tables(self._pending))
        self._pending, self._pending_rows, self._pending_since = [], 0, None
        return self.shards

    def _flush(self, table: pa.Table) -> None:
        relative = f"{self.folder}/{self.prefix}-{len(self.shards):05d}.parquet"
        counts = self.count(table) if self.count else {}
        info = write_shard(table.combine_chunks(), self.root, relative, self.config, counts)
        self.shards.append(info)
        if self.on_shard is not None:
            self.on_shard(info, table)
