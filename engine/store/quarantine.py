"""The quarantine's shards: the files that could not be annotated, each with its reason."""

from __future__ import annotations

import pyarrow as pa

from engine.config.settings import WriterConfig
from engine.store.counts import value_counts
from engine.store.location import Where
from engine.store.writer import ShardInfo, ShardWriter
from schemas.arrow import QUARANTINE_SCHEMA


def write_quarantine(root: Where, prefix: str, config: WriterConfig, rows: pa.Table) -> list[ShardInfo]:
    """Quarantine rows (the quarantine's columns of a probe index or of ``QUARANTINE_SCHEMA``) as shards named
    ``quarantine/<prefix>-<n>``, sorted by path, each counted by reason."""

    def count(table: pa.Table) -> dict[str, int]:
        return {"total": table.num_rows, **value_counts(table.column("reason"))}

    writer = ShardWriter(root, "quarantine", prefix, QUARANTINE_SCHEMA, config, count=count)
    if rows.num_rows:
        writer.write(rows.select(QUARANTINE_SCHEMA.names).cast(QUARANTINE_SCHEMA).sort_by("source_uri"))
    return writer.close()
