"""The probe phase's parts as pure functions of Arrow tables, each the body of one task.

A run's listing (sorted by URI) is cut into ranges. For each range, :func:`split_range` reads only the rows
of the previous probe index whose object (the file, or its container) lies in the range, and splits the
range's sources into cache hits and sources to probe. :func:`index_part` writes a part of the new probe index
(hits of a range, or freshly probed rows; sorted by URI) and cuts its rows by image id
(``engine/partitions/keys.py``). :func:`group_partition` groups one id partition's rows by content: the work
table and quarantine of that partition, and the paths it saw. No part needs another's rows.
"""

from __future__ import annotations

from dataclasses import replace

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from engine.config.settings import WriterConfig
from engine.ingest.probe import (
    PROBE_INDEX_SCHEMA,
    QUARANTINE_COLUMNS,
    as_probe_index,
    as_work_table,
    group_by_content,
)
from engine.ingest.probe_cache import ProbeCache, split_by_cache
from engine.partitions.keys import split_by_id
from engine.store.location import Where, location
from engine.store.reader import read_shards_where
from engine.store.writer import ShardInfo, write_shard

# Rows per row group of a probe index part: a range read prunes whole row groups by their URI statistics, and
# each row group read costs a request and a decode of its own (annotation shards keep small ones for images).
INDEX_ROW_GROUP_ROWS = 65_536
# A partition's quarantined rows: the probe index's columns the quarantine keeps.
QUARANTINED = pa.schema([PROBE_INDEX_SCHEMA.field(c) for c in QUARANTINE_COLUMNS])
# Every path a run probed and the content id it holds now (null: quarantined).
SEEN_PATHS = pa.schema([pa.field("source_uri", pa.string()), pa.field("image_id", pa.string())])


def index_rows_of_range(root: Where, parts: list[ShardInfo], low: str | None, high: str | None) -> pa.Table:
    """The rows of a probe index (``parts``) whose object lies in ``[low, high)`` (None: no bound there):
    a file's own URI, or a container member's container."""

    def within(field: pads.Expression) -> pads.Expression:
        above = field >= ("" if low is None else low)
        return above if high is None else above & (field < high)

    where = within(pads.field("source_uri")) | within(pads.field("locator", "container"))
    return as_probe_index(read_shards_where(root, parts, PROBE_INDEX_SCHEMA, where))


def split_range(
    listing: pa.Table, root: Where, parts: list[ShardInfo], low: str | None, high: str | None
) -> tuple[pa.Table, pa.Table, int]:
    """The probe index rows reused for a range of the listing (``listing``: its ``SOURCE_SCHEMA`` rows, from
    URI ``low`` up to ``high``), the range's sources still to probe, and how many rows are reused."""
    split = split_by_cache(listing, ProbeCache.of(index_rows_of_range(root, parts, low, high)))
    return split.hits, split.misses, split.hits.num_rows


def index_part(
    root: Where, relative: str | None, config: WriterConfig, partitions: int, spare: int, *tables: pa.Table
) -> tuple:
    """Probe index rows (``tables``) sorted by URI, written as the part ``relative`` of the new probe index
    (not written when None), and cut into ``partitions`` tables by image id (rows without one go to
    partition ``spare``): ``(ShardInfo or None, *tables)``."""
    rows = pa.concat_tables([as_probe_index(t) for t in tables] or [PROBE_INDEX_SCHEMA.empty_table()])
    info = None
    if relative is not None and rows.num_rows:
        rows = rows.sort_by("source_uri").combine_chunks()
        info = write_shard(rows, location(root), relative, index_writer(config), {})
    return (info, *split_by_id(rows, partitions, spare))


def index_writer(config: WriterConfig) -> WriterConfig:
    """The writer settings of a probe index part: the run's, with :data:`INDEX_ROW_GROUP_ROWS` row groups."""
    return replace(config, row_group_rows=INDEX_ROW_GROUP_ROWS)


def group_partition(*tables: pa.Table) -> tuple[pa.Table, pa.Table, pa.Table, tuple[int, int, int]]:
    """One id partition's probe index rows grouped by content: its work table (each image with the locator of
    the place it is read from), its quarantined rows, the paths it saw (:data:`SEEN_PATHS`), and the rows of each
    of the three."""
    rows = pa.concat_tables(tables or [PROBE_INDEX_SCHEMA.empty_table()])
    work, quarantined = group_by_content(rows)
    good = pc.is_null(rows.column("reason"))
    ids = pc.if_else(good, rows.column("image_id"), pa.scalar(None, pa.string()))
    seen = pa.Table.from_arrays([rows.column("source_uri"), ids], schema=SEEN_PATHS)
    quarantined = quarantined.cast(QUARANTINED)
    return as_work_table(work), quarantined, seen, (work.num_rows, quarantined.num_rows, seen.num_rows)
