"""Carry-over's three steps, each a pure function over one part (a task of ``engine/refresh/carryover.py``):

1. :func:`source_rows`, per batch of source shards: each row's image id, the work it needs under the current
   stages (its :class:`~engine.refresh.incremental.Level`), its source and row, cut into image-id partitions;
2. :func:`choose_in_partition`, per image-id partition of the work table: each wanted image's best row (the
   least work, then the earliest candidate, then the first row) and the rows of images kept as they were,
   routed back to the batches of their sources; and the work rows no earlier row serves (the new images);
3. :func:`take_batch`, per batch of sources: a shard whose rows are all carried exactly, under the same
   paths, is referenced as it is; otherwise this step writes its carried rows into new shards, and strips
   the stale rows of what must run again (those to re-annotate with the locator of their image's place now).
   The stripped rows are the step's own results: on Ray they stay in the object store for the annotate phase.

Every step reads only its own part: one batch of shards, or one id partition with the rows of its ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.config.settings import WriterConfig
from engine.execute.stage_runner import stages_map
from engine.ingest.curation import without_rows
from engine.ingest.image_bytes import LOCATED_ROWS, LOCATOR_COLUMN
from engine.ingest.locator import LOCATOR
from engine.partitions.keys import split_by_id, split_rows
from engine.partitions.parts import IDS, task_results
from engine.refresh.incremental import Level, RowPlan, StagePlan, failure_counts
from engine.store.location import Where
from engine.store.reader import read_shard
from engine.store.writer import ShardInfo, ShardWriter
from schemas.arrow import ANNOTATION_SCHEMA, conform
from schemas.records import ImageRecord

KEY_COLUMNS = ["image_id", "stages", "errors"]  # what choosing a row reads
PLACE_COLUMNS = ["image_id", "source_uris"]  # what taking the chosen rows reads
STAGE_PAIRS = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))
KEEP = -1  # the level of a row kept as it is: an image this run did not look at
SOURCE_ROWS = pa.schema([("image_id", pa.string()), ("level", pa.int8()), ("source", pa.int32()), ("row", pa.int32())])
PICKS = pa.schema(  # a chosen row, with its image's places and locator now (from the work table)
    [
        ("source", pa.int32()),
        ("row", pa.int32()),
        ("level", pa.int8()),
        ("source_uris", pa.list_(pa.string())),
        (LOCATOR_COLUMN, LOCATOR),
    ]
)
STRIP_CHUNK = 4096  # stale rows stripped a chunk at a time: only one chunk is ever Python objects
OnShard = Callable[[ShardInfo, pa.Table], None]


@dataclass(frozen=True)
class Source:
    """A shard carry-over reads: a ``candidate`` (its rows may serve images this run wants; ``resumed``: a
    killed run wrote it), and/or one whose rows of images this run did not look at are kept (``keep``)."""

    shard: ShardInfo
    candidate: bool = True
    resumed: bool = False
    keep: bool = False


@dataclass(frozen=True)
class Routes:
    """What the partitions' step knows of the sources, by source number: which are candidates, which keep
    rows, and the batch each belongs to (``batches`` in all)."""

    candidate: np.ndarray
    keep: np.ndarray
    batch: np.ndarray
    batches: int


# -- 1. the rows of a batch of sources --------------------------------------------------------------


def source_rows(
    root: Where, sources: Sequence[Source], first: int, plan: StagePlan, partitions: int
) -> pa.Table | tuple[pa.Table, ...]:
    """:data:`SOURCE_ROWS` of ``sources`` (numbered from ``first``), one table per image-id partition (the
    table itself for one). A row's level is classified once per distinct recorded stages and errors."""
    levels: dict[str, int] = {}
    tables = [SOURCE_ROWS.empty_table()]
    for number, source in enumerate(sources, first):
        keys = read_shard(root, source.shard, KEY_COLUMNS)
        count = keys.num_rows
        columns = [
            keys.column("image_id"),
            pa.array(_levels(keys, plan, levels), pa.int8()),
            pa.array(np.full(count, number, np.int32)),
            pa.array(np.arange(count, dtype=np.int32)),
        ]
        tables.append(pa.Table.from_arrays(columns, schema=SOURCE_ROWS))
    rows = pa.concat_tables(tables)
    return task_results(split_by_id(rows, partitions))


def _levels(keys: pa.Table, plan: StagePlan, known: dict[str, int]) -> np.ndarray:
    """Each key row's level under ``plan``; ``known``: levels by row key, filled as new keys are met."""
    encoded = pc.dictionary_encode(row_keys(keys))
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    distinct, first_rows = np.unique(codes, return_index=True)
    level_of_code = np.zeros(len(encoded.dictionary), np.int8)
    for code, row in zip(distinct.tolist(), first_rows.tolist(), strict=True):
        key = encoded.dictionary[code].as_py()
        if key not in known:
            known[key] = int(_row_plan(keys.slice(row, 1).to_pylist()[0], plan).level)
        level_of_code[code] = known[key]
    return level_of_code[codes]


def _row_plan(row: dict, plan: StagePlan) -> RowPlan:
    return plan.classify(stages_map(row["stages"]), failure_counts(row["errors"]))


def row_keys(keys: pa.Table) -> pa.Array:
    """One string per row naming its recorded stages and the stages of its errors, so rows sharing a plan
    share a key (computed with Arrow kernels: no Python object per row)."""
    stages = keys.column("stages").combine_chunks().cast(STAGE_PAIRS)  # a map's own keys ignore slicing
    pairs = pc.list_flatten(stages)
    stage_text = pc.binary_join_element_wise(pc.struct_field(pairs, 0), pc.struct_field(pairs, 1), "\x1f")
    errors = keys.column("errors").combine_chunks()
    failed = pc.struct_field(pc.list_flatten(errors), "stage")
    return pc.binary_join_element_wise(_joined(stages, stage_text), _joined(errors, failed), "\x1d")


def _joined(lists: pa.Array, values: pa.Array) -> pa.Array:
    """Each list of ``lists`` as its ``values`` (one per element, flattened) joined into one string."""
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    return pc.binary_join(pa.ListArray.from_arrays(offsets, pc.fill_null(values, "")), "\x1e")


# -- 2. the choice in an image-id partition ---------------------------------------------------------


def choose_in_partition(
    work: pa.Table, kept_ids: pa.Array, routes: Routes, *pieces: pa.Table
) -> tuple[pa.Table | int, ...]:
    """For one id partition (``work``: its work table rows; ``pieces``: the source rows of its ids): the
    :data:`PICKS` of each batch of sources (``routes.batches`` tables: each wanted image's best row with the
    image's places and the locator of the place it is read from, and every row of ``kept_ids`` in a source
    that keeps rows, at level :data:`KEEP`), then the work rows no row serves, then their count."""
    rows = pa.concat_tables([SOURCE_ROWS.empty_table(), *pieces])
    ids = rows.column("image_id")
    position = pc.fill_null(pc.index_in(ids, value_set=work.column("image_id")), -1).to_numpy(zero_copy_only=False)
    source = rows.column("source").to_numpy()
    level, row = rows.column("level").to_numpy(), rows.column("row").to_numpy()
    wanted = np.flatnonzero((position >= 0) & routes.candidate[source])
    ordered = wanted[np.lexsort((row[wanted], source[wanted], level[wanted], position[wanted]))]
    best = ordered[np.r_[True, position[ordered][1:] != position[ordered][:-1]]] if ordered.size else ordered
    kept = np.flatnonzero(routes.keep[source] & pc.fill_null(pc.is_in(ids, value_set=kept_ids), False).to_numpy())
    at = pa.array(position[best], pa.int64())
    places, locators = work.column("source_uris").take(at), work.column(LOCATOR_COLUMN).take(at).cast(LOCATOR)
    picks = pa.Table.from_arrays(
        [
            pa.array(np.concatenate([source[best], source[kept]]), pa.int32()),
            pa.array(np.concatenate([row[best], row[kept]]), pa.int32()),
            pa.array(np.concatenate([level[best], np.full(kept.size, KEEP, np.int8)]), pa.int8()),
            pa.concat_arrays([*places.chunks, pa.nulls(kept.size, pa.list_(pa.string()))]),
            pa.concat_arrays([*locators.chunks, pa.nulls(kept.size, LOCATOR)]),
        ],
        schema=PICKS,
    )
    by_batch = split_rows(picks, routes.batch[picks.column("source").to_numpy()], routes.batches)
    return (*by_batch, *without_rows(work, position[best]))


# -- 3. taking the chosen rows of a batch of sources ------------------------------------------------


@dataclass
class Taken:
    """What a batch of sources gave the driver: shards referenced as they are (in source order) and written,
    how many rows it carried exactly (kept ones included) and how many stripped rows it queued to re-annotate
    and to re-filter (the ids and rows themselves are :func:`take_batch`'s other results)."""

    referenced: list[ShardInfo] = field(default_factory=list)
    written: list[ShardInfo] = field(default_factory=list)
    carried: int = 0
    resumed: int = 0
    kept: int = 0
    reannotate: int = 0
    refilter: int = 0
    stale_specialists: set[str] = field(default_factory=set)


@dataclass
class BatchRows:
    """What a batch keeps where it runs: the ids of the rows it carried, and the stripped rows it queued to
    re-annotate (:data:`~engine.ingest.image_bytes.LOCATED_ROWS`) and to re-filter (annotation schema)."""

    carried: list[pa.Array] = field(default_factory=lambda: [pa.array([], pa.string())])
    pixels: list[pa.Table] = field(default_factory=lambda: [LOCATED_ROWS.empty_table()])
    filters: list[pa.Table] = field(default_factory=lambda: [ANNOTATION_SCHEMA.empty_table()])


@dataclass(frozen=True)
class BatchPlan:
    """Where a batch of sources writes: the run's ``root``, ``writer`` settings, shard ``prefix`` and journal
    (``on_shard``, called for each shard written), the current ``stages``, and the id ``partitions`` its carried
    ids are cut into."""

    root: Where
    stages: StagePlan
    writer: WriterConfig
    prefix: str
    on_shard: OnShard | None = None
    partitions: int = 1


def take_batch(plan: BatchPlan, sources: Sequence[Source], first: int, *pieces: pa.Table) -> tuple:
    """Carry the rows chosen from ``sources`` (numbered from ``first``; ``pieces``: their :data:`PICKS`
    from every partition): a source whose rows are all carried exactly (kept ones as they are, the others
    under their images' places now) is referenced; otherwise its carried rows are written into new shards
    and its stale rows stripped of what must run again. Returns what was taken, the stripped rows to
    re-annotate (with their locators) and to re-filter, then the ids carried in each of ``plan.partitions``
    id partitions (:data:`~engine.partitions.parts.IDS`)."""
    picks = pa.concat_tables([PICKS.empty_table(), *pieces]).sort_by([("source", "ascending"), ("row", "ascending")])
    bounds = np.searchsorted(picks.column("source").to_numpy(), np.arange(first, first + len(sources) + 1))
    writer = ShardWriter(plan.root, "annotations", plan.prefix, ANNOTATION_SCHEMA, plan.writer, on_shard=plan.on_shard)
    taken, held = Taken(), BatchRows()
    for offset, source in enumerate(sources):
        mine = picks.slice(bounds[offset], bounds[offset + 1] - bounds[offset])
        if mine.num_rows:
            _take_source(plan, source, mine, writer, taken, held)
    taken.written = writer.close()
    pixels, filters = pa.concat_tables(held.pixels), pa.concat_tables(held.filters)
    carried = pa.Table.from_arrays([pa.concat_arrays(held.carried)], schema=IDS)
    taken.reannotate, taken.refilter, taken.carried = pixels.num_rows, filters.num_rows, carried.num_rows
    return (taken, pixels, filters, *split_by_id(carried, plan.partitions))


def _take_source(
    plan: BatchPlan, source: Source, picks: pa.Table, writer: ShardWriter, taken: Taken, held: BatchRows
) -> None:
    current = read_shard(plan.root, source.shard, PLACE_COLUMNS)
    rows, level = picks.column("row").to_numpy(), picks.column("level").to_numpy()
    exact, kept = _mask(current.num_rows, rows[level == Level.EXACT]), _mask(current.num_rows, rows[level == KEEP])
    held.carried.append(current.column("image_id").combine_chunks().filter(pa.array(exact | kept)))
    taken.resumed += int(exact.sum()) if source.resumed else 0
    taken.kept += int(kept.sum())
    places = picks.column("source_uris").filter(pa.array(level == Level.EXACT)).combine_chunks()
    if (exact | kept).all() and places.equals(current.column("source_uris").combine_chunks().filter(pa.array(exact))):
        taken.referenced.append(source.shard)
        return
    table = conform(read_shard(plan.root, source.shard))  # shards of an older schema version gain its columns
    if exact.any():
        writer.write(_with_paths(table.filter(pa.array(exact)), places))
    if kept.any():
        writer.write(table.filter(pa.array(kept)))
    queued = (level != Level.EXACT) & (level != KEEP)
    rows_queued, picks_queued = table.take(pa.array(rows[queued], pa.int64())), picks.filter(pa.array(queued))
    for start in range(0, rows_queued.num_rows, STRIP_CHUNK):
        chunk = rows_queued.slice(start, STRIP_CHUNK), picks_queued.slice(start, STRIP_CHUNK)
        _queue_stale(plan.stages, *chunk, taken, held)


def _mask(count: int, rows: np.ndarray) -> np.ndarray:
    mask = np.zeros(count, bool)
    mask[rows] = True
    return mask


def _with_paths(table: pa.Table, places: pa.Array) -> pa.Table:
    """``table`` with each row's ``source_uris`` (and first ``source_uri``) set to ``places``."""
    table = table.set_column(table.schema.get_field_index("source_uris"), "source_uris", places)
    first = pc.list_element(places, 0) if len(places) else pa.array([], pa.string())
    return table.set_column(table.schema.get_field_index("source_uri"), "source_uri", first)


def _queue_stale(stages: StagePlan, rows: pa.Table, picks: pa.Table, taken: Taken, held: BatchRows) -> None:
    """The stale ``rows`` stripped of what must run again, under their images' places now, queued by level:
    those to re-annotate with the locator of their image's place (``picks``)."""
    pixels, filters, located = [], [], []
    for at, (row, uris) in enumerate(zip(rows.to_pylist(), picks.column("source_uris").to_pylist(), strict=True)):
        row_plan = _row_plan(row, stages)
        record = ImageRecord.from_row(row)
        stages.strip(record, row_plan)
        record.source_uris = list(uris)
        record.source_uri = record.source_uris[0]
        if row_plan.level == Level.REANNOTATE:
            pixels.append(record.to_row())
            located.append(at)
        else:
            filters.append(record.to_row())
        taken.stale_specialists |= row_plan.stale
    if pixels:
        locators = picks.column(LOCATOR_COLUMN).take(pa.array(located, pa.int64()))
        table = pa.Table.from_pylist(pixels, schema=ANNOTATION_SCHEMA)
        held.pixels.append(table.append_column(LOCATED_ROWS.field(LOCATOR_COLUMN), locators))
    if filters:
        held.filters.append(pa.Table.from_pylist(filters, schema=ANNOTATION_SCHEMA))
