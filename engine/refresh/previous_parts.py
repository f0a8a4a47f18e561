"""The previous version's images in the work table's image-id partitions, and what this run saw of their paths.

A refresh compares the previous version's images (:data:`~engine.refresh.tombstones.PREVIOUS_IMAGES`: ids and
paths) with the paths this run probed (:data:`~engine.ingest.probe_parts.SEEN_PATHS`, in the same id partitions,
by the id each path holds now). Whether an image's id was seen is a question for its own partition; whether its
paths were, and what they hold now, is not: a path whose content changed holds an id of another partition. An
exchange keyed by path answers it (:func:`seen_paths_of`): each side's paths are cut by a hash of the path, each
path partition joins its pieces, and the paths found go back to the id partition of the image that had them.

Then each id partition decides alone which of its images a run that did not look at them keeps
(:func:`kept_unlisted_ids`) and which leave the new version, and why (:func:`tombstones_in_parts`). Every step is a
task over its own part (Ray tasks for a run in parts), so the driver holds none of the previous version's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from engine.ingest.curation import REFERENCE_SCHEMA, carried_skips, places_or_own
from engine.partitions.keys import batches_by_rows, split_by_id, split_rows
from engine.partitions.parts import IDS, Parts, column_of, counted_parts, empty_parts, joined_parts, task_results
from engine.partitions.tasks import Tasks
from engine.refresh.scope import InputScope, kept_out_of_scope
from engine.refresh.tombstones import PATH_IDS, PREVIOUS_IMAGES, find_tombstones
from engine.store.location import Where
from engine.store.reader import read_shards_where
from engine.store.writer import ShardInfo
from schemas.arrow import SKIPPED_SCHEMA, TOMBSTONE_SCHEMA

PATHS = pa.schema([pa.field("source_uri", pa.string())])


# -- the previous version's images in id partitions ---------------------------------------------


@dataclass(frozen=True)
class PreviousImages:
    """The previous version's images (``images``: :data:`PREVIOUS_IMAGES`) in the work table's id partitions, and
    the paths of them this run saw (``seen``: :data:`PATH_IDS`, in the same partitions); empty on a first run."""

    images: Parts
    seen: Parts

    @property
    def rows(self) -> int:
        return self.images.rows


def previous_images_in_parts(root: Where, shards: Sequence[ShardInfo], seen: Parts, batch_rows: int) -> PreviousImages:
    """The images of a version's ``shards`` in the partitions of ``seen`` (the paths this run probed, by the id
    each holds now: :data:`~engine.ingest.probe_parts.SEEN_PATHS`), with the paths of them this run saw."""
    images = previous_parts(root, shards, seen.tasks, len(seen.handles), batch_rows, PREVIOUS_IMAGES)
    if not images.rows:
        return PreviousImages(images, empty_parts(PATH_IDS, len(images.handles)))
    return PreviousImages(images, seen_paths_of(images, seen))


def previous_parts(
    root: Where, shards: Sequence[ShardInfo], tasks: Tasks, partitions: int, batch_rows: int, schema: pa.Schema
) -> Parts:
    """The ``schema`` columns of every row of ``shards`` in ``partitions`` id partitions (a column an older shard
    lacks is null): a task per batch of about ``batch_rows`` rows of shards reads them and cuts them by id, a task
    per partition joins its pieces. Without shards (a first run), empty tables here."""
    if not shards:
        return empty_parts(schema, partitions)
    batches = [shards[b.start : b.stop] for b in batches_by_rows([shard.rows for shard in shards], batch_rows)]
    pieces = [tasks.submit(previous_rows, root, batch, partitions, schema, returns=partitions) for batch in batches]
    return joined_parts(tasks, pieces, schema, partitions)


def previous_rows(
    root: Where, shards: Sequence[ShardInfo], partitions: int, schema: pa.Schema
) -> pa.Table | tuple[pa.Table, ...]:
    """The ``schema`` rows of ``shards`` cut into ``partitions`` by id (the table itself for one)."""
    return task_results(split_by_id(read_shards_where(root, list(shards), schema), partitions))


# -- the paths this run saw, by the partition of the image that had them ----------------------------


def seen_paths_of(earlier: Parts, seen: Parts) -> Parts:
    """For each id partition of ``earlier`` (:data:`PREVIOUS_IMAGES`), the paths of its images this run probed
    with the id each holds now (:data:`PATH_IDS`; null: quarantined), found by an exchange keyed by path against
    ``seen`` (:data:`~engine.ingest.probe_parts.SEEN_PATHS`, as many partitions)."""
    tasks, count = earlier.tasks, len(earlier.handles)
    mine = [tasks.submit(paths_by_key, part, count, returns=count) for part in earlier.handles]
    found = [tasks.submit(seen_by_key, part, count, returns=count) for part in seen.handles]
    found_by_key = [
        tasks.submit(paths_found, count, *[m[j] for m in mine], *[f[j] for f in found], returns=count)
        for j in range(count)
    ]
    return joined_parts(tasks, found_by_key, PATH_IDS, count)


def path_keys(paths: pa.Array | pa.ChunkedArray, count: int) -> np.ndarray:
    """Each path's path partition among ``count``: a fixed hash of the string (the same in every process)."""
    if count == 1 or not len(paths):
        return np.zeros(len(paths), np.int32)
    values = paths.to_numpy(zero_copy_only=False)
    return (pd.util.hash_array(values) % np.uint64(count)).astype(np.int32)


def paths_by_key(earlier: pa.Table, count: int) -> pa.Table | tuple[pa.Table, ...]:
    """The distinct paths of one id partition's earlier images (:data:`PATHS`), cut into ``count`` by path."""
    places = earlier.column("source_uris").combine_chunks() if earlier.num_rows else pa.array([], pa.list_(pa.string()))
    paths = pc.unique(pc.list_flatten(places).drop_null())
    table = pa.Table.from_arrays([paths], schema=PATHS)
    return task_results(split_rows(table, path_keys(paths, count), count))


def seen_by_key(seen: pa.Table, count: int) -> pa.Table | tuple[pa.Table, ...]:
    """One id partition's paths seen (:data:`PATH_IDS`), cut into ``count`` by path."""
    table = seen.select(PATH_IDS.names).cast(PATH_IDS)
    return task_results(split_rows(table, path_keys(table.column("source_uri"), count), count))


def paths_found(count: int, *pieces: pa.Table) -> pa.Table | tuple[pa.Table, ...]:
    """In one path partition (``pieces``: the paths of each of ``count`` id partitions' earlier images, then the
    paths seen of each id partition), the paths seen among each id partition's (:data:`PATH_IDS`)."""
    seen = pa.concat_tables([PATH_IDS.empty_table(), *pieces[count:]])
    uris = seen.column("source_uri")
    return task_results([seen.filter(pc.is_in(uris, value_set=paths.column("source_uri"))) for paths in pieces[:count]])


# -- the previous version's skipped rows this run carries ---------------------------------------------


def carried_skips_in_parts(
    root: Where, shards: Sequence[ShardInfo], seen: Parts, scope: InputScope, batch_rows: int
) -> Parts:
    """The previous version's skipped rows (its skipped ``shards``) that this run did not look at
    (:func:`~engine.ingest.curation.carried_skips`), in the id partitions of ``seen`` (the paths this run probed,
    by the id each holds now): each partition's rows judged where they are, the paths of them this run saw found
    by the exchange keyed by path (:func:`seen_paths_of`)."""
    tasks = seen.tasks
    previous = previous_parts(root, shards, tasks, len(seen.handles), batch_rows, SKIPPED_SCHEMA)
    places = [tasks.submit(skip_places, part)[0] for part in previous.handles]
    seen_of = seen_paths_of(Parts(places, tasks, previous.counts, PREVIOUS_IMAGES), seen)
    shared = tasks.put(scope)
    parts = zip(previous.handles, seen_of.handles, seen.handles, strict=True)
    carried = [tasks.submit(carried_in_part, *part, shared, returns=2) for part in parts]
    return counted_parts(tasks, carried, SKIPPED_SCHEMA)


def skip_places(skipped: pa.Table) -> pa.Table:
    """Skipped rows' ids and every path of each (:data:`PREVIOUS_IMAGES`: ``source_uris``, or its own)."""
    return pa.Table.from_arrays([skipped.column("image_id"), places_or_own(skipped)], schema=PREVIOUS_IMAGES)


def carried_in_part(previous: pa.Table, seen_of: pa.Table, seen: pa.Table, scope: InputScope) -> tuple[pa.Table, int]:
    """One id partition's skipped rows carried (``seen_of``: the paths of them seen; ``seen``: the partition's paths
    seen, by the id they hold now), and how many."""
    carried = carried_skips(previous, seen_of.column("source_uri"), column_of(seen, "image_id").drop_null(), scope)
    return carried, carried.num_rows


# -- what each id partition decides -------------------------------------------------------------


def kept_unlisted_ids(previous: PreviousImages, seen: Parts, scope: InputScope) -> Parts:
    """The ids (:data:`~engine.partitions.parts.IDS`) of the previous version's images this run did not look at,
    kept as they were (:func:`~engine.refresh.scope.kept_out_of_scope`), decided and left in each id partition
    (``seen``: the paths this run probed, in the same partitions)."""
    tasks = previous.images.tasks
    shared = tasks.put(scope)
    parts = zip(previous.images.handles, previous.seen.handles, seen.handles, strict=True)
    found = [tasks.submit(kept_in_part, *part, shared, returns=2) for part in parts]
    return counted_parts(tasks, found, IDS)


def kept_in_part(earlier: pa.Table, seen_of: pa.Table, seen: pa.Table, scope: InputScope) -> tuple[pa.Table, int]:
    """One id partition's earlier images kept as they were, and how many: none of their paths was probed
    (``seen_of``: the paths of its images seen), their ids were not found (``seen``: the partition's paths seen, by
    the id they hold now)."""
    seen_ids = column_of(seen, "image_id").drop_null()
    kept = kept_out_of_scope(earlier, seen_of.column("source_uri"), seen_ids, scope)
    return pa.Table.from_arrays([kept], schema=IDS), len(kept)


def kept_references_in_parts(root: Where, shards: Sequence[ShardInfo], kept: Parts, batch_rows: int) -> Parts:
    """The images ``kept`` (:data:`~engine.partitions.parts.IDS` in id partitions) of a version's ``shards`` with
    the measures their rows hold, as :data:`~engine.ingest.curation.REFERENCE_SCHEMA` rows in the same partitions
    (rows of shards written before measures were kept are left out): the shards read in batches and cut by id
    (:func:`previous_parts`), each partition keeping the rows of its kept images."""
    tasks = kept.tasks
    rows = previous_parts(root, shards, tasks, len(kept.handles), batch_rows, REFERENCE_SCHEMA)
    found = [
        tasks.submit(references_in_part, *part, returns=2) for part in zip(rows.handles, kept.handles, strict=True)
    ]
    return counted_parts(tasks, found, REFERENCE_SCHEMA)


def references_in_part(rows: pa.Table, kept: pa.Table) -> tuple[pa.Table, int]:
    """One partition's rows of its ``kept`` images that hold measures, each with every path (its ``source_uris``,
    or its own), and how many."""
    wanted = pc.is_in(rows.column("image_id"), value_set=column_of(kept, "image_id"))
    table = rows.filter(pc.and_(wanted, pc.is_valid(rows.column("measures"))))
    return table.set_column(2, "source_uris", places_or_own(table)), table.num_rows


def tombstones_in_parts(previous: PreviousImages, carried: Parts, sent: Parts, late: pa.Table, skipped: Parts) -> Parts:
    """Tombstone rows (:func:`~engine.refresh.tombstones.find_tombstones`) of the previous version's images
    neither carried nor written (``carried`` and ``sent``: ids in the same id partitions; an image sent but among
    ``late``, the ``source_uri`` and ``image_id`` of files that failed to load while annotated, was not written:
    it counts as quarantined), by image id, found in each id partition; ``skipped``: the rows curation skipped in
    this run (with an ``image_id`` column, in the same partitions). The tombstones stay in their partitions."""
    tasks = previous.images.tasks
    shared_late = tasks.put(late)
    images, seen = previous.images.handles, previous.seen.handles
    parts = zip(images, seen, carried.handles, sent.handles, skipped.column("image_id"), strict=True)
    found = [tasks.submit(tombstones_in_part, *part, shared_late, returns=2) for part in parts]
    return counted_parts(tasks, found, TOMBSTONE_SCHEMA)


def tombstones_in_part(
    earlier: pa.Table, seen_of: pa.Table, carried: pa.Table, sent: pa.Table, skipped: pa.Array, late: pa.Table
) -> tuple[pa.Table, int]:
    """One id partition's tombstones, and how many; a path of ``late`` counts as quarantined whatever it held when
    probed."""
    late_paths, late_ids = column_of(late, "source_uri"), column_of(late, "image_id")
    path_ids = seen_of.cast(PATH_IDS)
    path_ids = pa.concat_tables(
        [
            path_ids.filter(pc.invert(pc.is_in(path_ids.column("source_uri"), value_set=late_paths))),
            pa.table({"source_uri": late_paths, "image_id": pa.nulls(len(late_paths), pa.string())}, PATH_IDS),
        ]
    )
    written = column_of(sent, "image_id")
    written = written.filter(pc.invert(pc.is_in(written, value_set=late_ids)))
    kept = pa.concat_arrays([column_of(carried, "image_id"), written])
    tombstones = find_tombstones(earlier, kept, path_ids, skipped)
    return tombstones, tombstones.num_rows
