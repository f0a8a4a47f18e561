"""Parquet shard writing: zstd, a target number of rows per shard, row groups sized for scanning.

A shard is written under a temporary name and renamed when complete, so a shard file that
exists is always whole.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from engine.config.settings import WriterConfig
from engine.store.counts import Counts, count_annotations


@dataclass(frozen=True)
class ShardInfo:
    """A completed shard: its path relative to the output directory, rows and annotation counts."""

    path: str
    rows: int
    bytes: int
    counts: Counts = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"path": self.path, "rows": self.rows, "bytes": self.bytes, "counts": self.counts}

    @classmethod
    def from_dict(cls, data: dict) -> ShardInfo:
        return cls(data["path"], int(data["rows"]), int(data["bytes"]), data.get("counts", {}))


def write_table_atomically(table: pa.Table, path: Path, config: WriterConfig) -> int:
    """Write ``table`` to ``path`` (temp file, fsync, rename); return the file size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    pq.write_table(
        table,
        partial,
        compression=config.compression,
        compression_level=config.compression_level,
        row_group_size=config.row_group_rows,
        write_statistics=["image_id"] if "image_id" in table.column_names else True,
    )
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, path)
    return path.stat().st_size


class ShardWriter:
    """Buffers Arrow batches and writes shards of ``rows_per_shard`` rows under ``root / folder``."""

    def __init__(
        self,
        root: Path,
        folder: str,
        prefix: str,
        schema: pa.Schema,
        config: WriterConfig,
        on_shard: Callable[[ShardInfo, pa.Table], None] | None = None,
        count: Callable[[pa.Table], Counts] | None = count_annotations,
    ) -> None:
        self.root, self.folder, self.prefix = root, folder, prefix
        self.schema, self.config = schema, config
        self.on_shard, self.count = on_shard, count
        self.shards: list[ShardInfo] = []
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def write(self, batch: pa.Table) -> None:
        batch = batch.select(self.schema.names)
        # Casting nested columns costs even when types already match (most batches): then only set metadata.
        if batch.schema.equals(self.schema):
            batch = batch.replace_schema_metadata(self.schema.metadata)
        else:
            batch = batch.cast(self.schema)
        if batch.num_rows == 0:
            return
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        while self._pending_rows >= self.config.rows_per_shard:
            combined = pa.concat_tables(self._pending)
            self._flush(combined.slice(0, self.config.rows_per_shard))
            rest = combined.slice(self.config.rows_per_shard)
            self._pending, self._pending_rows = ([rest] if rest.num_rows else []), rest.num_rows

    def close(self) -> list[ShardInfo]:
        if self._pending_rows:
            self._flush(pa.concat_tables(self._pending))
        self._pending, self._pending_rows = [], 0
        return self.shards

    def _flush(self, table: pa.Table) -> None:
        relative = f"{self.folder}/{self.prefix}-{len(self.shards):05d}.parquet"
        size = write_table_atomically(table.combine_chunks(), self.root / relative, self.config)
        info = ShardInfo(relative, table.num_rows, size, self.count(table) if self.count else {})
        self.shards.append(info)
        if self.on_shard is not None:
            self.on_shard(info, table)
