"""The side tables' shards written where their rows are: the quarantine (files that could not be annotated, each
with its reason), the skipped table (good images curation did not annotate, each with its rule) and the tombstones
(images of the previous version a version no longer holds, each with its reason)."""

from __future__ import annotations

import pyarrow as pa

from engine.config.settings import WriterConfig
from engine.store.counts import value_counts
from engine.store.location import Where
from engine.store.writer import ShardInfo, ShardWriter
from schemas.arrow import QUARANTINE_SCHEMA, SKIPPED_SCHEMA, TOMBSTONE_SCHEMA


def write_quarantine(root: Where, prefix: str, config: WriterConfig, rows: pa.Table) -> list[ShardInfo]:
    """Quarantine rows (the quarantine's columns of a probe index or of ``QUARANTINE_SCHEMA``) as shards named
    ``quarantine/<prefix>-<n>``, sorted by path, each counted by reason."""
    return _write_counted(root, "quarantine", prefix, config, QUARANTINE_SCHEMA, rows, "reason")


def write_skipped(root: Where, prefix: str, config: WriterConfig, rows: pa.Table) -> list[ShardInfo]:
    """Skipped rows (``SKIPPED_SCHEMA``) as shards named ``skipped/<prefix>-<n>``, sorted by path, each counted
    by rule."""
    return _write_counted(root, "skipped", prefix, config, SKIPPED_SCHEMA, rows, "rule")


def write_tombstones(root: Where, prefix: str, config: WriterConfig, rows: pa.Table) -> list[ShardInfo]:
    """Tombstone rows (``TOMBSTONE_SCHEMA``) as shards named ``tombstones/<prefix>-<n>``, sorted by path, each
    counted by reason."""
    return _write_counted(root, "tombstones", prefix, config, TOMBSTONE_SCHEMA, rows, "reason")


def _write_counted(
    root: Where, folder: str, prefix: str, config: WriterConfig, schema: pa.Schema, rows: pa.Table, counted_by: str
) -> list[ShardInfo]:
    """``rows`` as ``schema`` shards named ``<folder>/<prefix>-<n>``, sorted by path, each counted by the values of
    its ``counted_by`` column."""

    def count(table: pa.Table) -> dict[str, int]:
        return {"total": table.num_rows, **value_counts(table.column(counted_by))}

    writer = ShardWriter(root, folder, prefix, schema, config, count=count)
    if rows.num_rows:
        writer.write(rows.sort_by("source_uri"))  # the writer takes the columns of its schema
    return writer.close()
