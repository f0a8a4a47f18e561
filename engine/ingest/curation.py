"""Curation of a run's unique images before any model runs: the image gates and near-duplicate groups of
``filters/curation``, on the measures probing stored, deciding which rows of the work table go to the
specialists.

An image an earlier version annotated is its group's representative before any copy a refresh adds
(even a larger one), so a refresh never annotates a group again. Everything here is a pure function of
Arrow tables (the work table, ``engine.ingest.probe.WORK_SCHEMA``, with its ``measures`` struct column)
and the earlier version's image ids: no Python object per image outside the selection itself. A run curates
the work table in its image-id partitions (:func:`curate_parts`), a task per partition.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.ingest.skipped_parts import SkipTally, skips_in_parts, tally_skips
from engine.partitions.keys import ids_by_partition, split_by_id, split_rows
from engine.partitions.parts import Parts, counted_parts, in_process
from engine.partitions.tasks import Tasks
from engine.refresh.scope import InputScope, one_array, unseen_and_not_gone
from filters.curation.hash_bands import IN_PROCESS as IN_PROCESS_SEARCH
from filters.curation.hash_bands import PairSearch
from filters.curation.selection import (
    GroupMembers,
    copies_of_members,
    gate_part,
    group_members,
)
from filters.curation.settings import CurationSettings
from schemas.arrow import IMAGE_MEASURES, SKIPPED_SCHEMA

CURATION_INPUT = pa.schema(
    [
        ("source_uri", pa.string()),
        ("image_id", pa.string()),
        ("source_uris", pa.list_(pa.string())),
        ("measures", IMAGE_MEASURES),
        ("annotated", pa.bool_()),
    ]
)
# Annotated images kept from an earlier version that a new image may be a copy of (:func:`kept_references`).
REFERENCE_SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("source_uri", pa.string()),
        ("source_uris", pa.list_(pa.string())),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("measures", IMAGE_MEASURES),
    ]
)
Ids = Collection[str] | pa.Array | pa.ChunkedArray


@dataclass(frozen=True)
class CuratedWork:
    """The work table's rows to annotate (``engine.ingest.probe.WORK_SCHEMA``, in their order and image-id
    partitions), and one :data:`schemas.arrow.SKIPPED_SCHEMA` row per image skipped (``skipped``, sorted by
    ``source_uri`` in the same partitions)."""

    work: Parts
    skipped: Parts

    @cached_property
    def tally(self) -> SkipTally:
        """The skipped rows by rule and the near-duplicate groups, counted where the partitions are."""
        return tally_skips(self.skipped)

    def with_skips(self, pieces: Sequence[Any]) -> CuratedWork:
        """These skipped rows and ``pieces`` (a handle per partition: more skipped rows of its images)."""
        return replace(self, skipped=skips_in_parts(self.work.tasks, [self.skipped.handles, pieces]))


def id_set(ids: Ids) -> pa.Array:
    """``ids`` as one Arrow array, the ``value_set`` of ``pc.is_in``."""
    if isinstance(ids, pa.Array | pa.ChunkedArray):
        return one_array(ids)
    return pa.array(list(ids), pa.string())


def is_among(table: pa.Table, ids: Ids) -> pa.ChunkedArray:
    """For each row of ``table``: whether its ``image_id`` is one of ``ids``."""
    return pc.is_in(table.column("image_id"), value_set=id_set(ids))


def curation_table(rows: pa.Table, annotated_ids: Ids) -> pa.Table:
    """The input of :func:`filters.curation.selection.select_for_annotation`: ``rows`` (work table or
    :data:`REFERENCE_SCHEMA` rows) with ``annotated`` set for the images an earlier version annotated."""
    columns = [rows.column(name) for name in CURATION_INPUT.names[:-1]]
    return pa.Table.from_arrays([*columns, is_among(rows, annotated_ids)], schema=CURATION_INPUT)


def curate(
    work: pa.Table,
    settings: CurationSettings,
    annotated_ids: Ids | Parts = (),
    references: pa.Table | None = None,
    search: PairSearch = IN_PROCESS_SEARCH,
) -> CuratedWork:
    """Which rows of ``work`` (the work table) to annotate: gated images and near-duplicates are skipped, the
    rest kept in order. ``annotated_ids``: images an earlier version annotated (preferred as representatives).
    ``references`` (:data:`REFERENCE_SCHEMA`): annotated images this run does not judge (kept as they are)
    that a new image may be a copy of. ``search``: where the near-duplicate pair search runs
    (``filters.curation.hash_bands``). One part, in this process (see :func:`curate_parts`)."""
    return curate_parts(in_process(work), settings, annotated_ids, references, search)


def curate_parts(
    work: Parts,
    settings: CurationSettings,
    annotated_ids: Ids | Parts = (),
    references: pa.Table | Parts | None = None,
    search: PairSearch = IN_PROCESS_SEARCH,
) -> CuratedWork:
    """:func:`curate` over the work table in its image-id partitions (cut as ``engine.partitions.keys.id_partitions``
    cuts them, so an id and its earlier rows share one partition), the curated work in the same partitions.

    Each partition's task gates its images and keeps apart the columns the grouping needs (hashes, sizes,
    whether annotated before); one task finds the near-duplicate groups over every partition's columns (its pair
    search fanning out as Ray tasks for a large run) and keeps the images in groups of two or more; another reads
    back their rows, picks each group's representative and cuts the copies by partition. Each partition's task drops
    its skipped rows from its work, and another joins its skipped rows (gated and copies). Every step is a task
    (Ray tasks on Ray): the driver holds no row or column per image, only counts. ``annotated_ids``: ids, or tables
    in the same id partitions with an ``image_id`` column (left where they are); ``references``: a table, or its
    rows in the same id partitions."""
    parts, tasks, count = work.handles, work.tasks, len(work.handles)
    earlier = annotated_in_parts(annotated_ids, tasks, count)
    if isinstance(references, Parts):
        others = references.handles
    else:
        known = REFERENCE_SCHEMA.empty_table() if references is None else references
        others = [tasks.put(refs) for refs in split_by_id(known, count)]
    inputs = list(zip(parts, earlier, others, strict=True))
    gating = [tasks.submit(judge_part, *part, settings, returns=3) for part in inputs]
    if settings.dedup.enabled:
        members = tasks.submit(members_of, settings, search, *[grouping for _, _, grouping in gating])[0]
        found = tasks.submit(copies_of, settings, tasks, members, work.counts, inputs, returns=2 * count)
        copies = [found[2 * k : 2 * k + 2] for k in range(count)]  # each partition's positions and skipped rows
    else:
        none = (tasks.put(np.zeros(0, np.int64)), tasks.put(SKIPPED_SCHEMA.empty_table()))
        copies = [none] * count
    kept = [
        tasks.submit(without_rows, part, gated, at, returns=2)
        for part, (gated, _, _), (at, _) in zip(parts, gating, copies, strict=True)
    ]
    skipped = skips_in_parts(tasks, [[rows for _, rows, _ in gating], [rows for _, rows in copies]])
    return CuratedWork(counted_parts(tasks, kept, work.schema), skipped)


def annotated_in_parts(annotated_ids: Ids | Parts, tasks: Tasks, count: int) -> list[Any]:
    """The ids of ``annotated_ids`` in ``count`` id partitions: a handle per partition to one array of ids (the
    ``image_id`` column of each part taken where it is, or the ids cut here a partition at a time)."""
    if isinstance(annotated_ids, Parts):
        return annotated_ids.column("image_id")
    return [tasks.put(ids) for ids in ids_by_partition(as_ids(annotated_ids), count)]


def as_ids(ids: Ids) -> pa.Array | pa.ChunkedArray:
    """``ids`` as Arrow (an Arrow array or column as it is, no copy)."""
    return ids if isinstance(ids, pa.Array | pa.ChunkedArray) else pa.array(list(ids), pa.string())


def judged_rows(work: pa.Table, annotated_ids: pa.Array | pa.ChunkedArray, references: pa.Table) -> pa.Table:
    """One partition's images to judge: its work table rows (``annotated`` set for ``annotated_ids``), then the
    ``references`` that are not among them (annotated, so preferred as representatives)."""
    judged = curation_table(work, annotated_ids)
    others = references.filter(pc.invert(is_among(references, work.column("image_id"))))
    if not others.num_rows:
        return judged
    return pa.concat_tables([judged, curation_table(others, others.column("image_id"))])


def judge_part(
    work: pa.Table, annotated_ids: pa.Array, references: pa.Table, settings: CurationSettings
) -> tuple[np.ndarray, pa.Table, dict[str, np.ndarray]]:
    """The gates over one partition (:func:`judged_rows`; gated references are not reported: kept as they are):
    the positions of the work rows gated, their skipped rows, and the grouping columns of the images the gates
    keep (each left where it is on Ray)."""
    gated = gate_part(judged_rows(work, annotated_ids, references), settings)
    judged = gated.gated < work.num_rows
    return gated.gated[judged], gated.skipped.filter(pa.array(judged)), gated.grouping


def members_of(settings: CurationSettings, search: PairSearch, *groupings: dict[str, np.ndarray]) -> GroupMembers:
    """:func:`~filters.curation.selection.group_members` of the partitions' grouping columns (a task's body: each
    partition's columns one argument, so that Ray hands over their values)."""
    return group_members(groupings, settings, search)


def copies_of(
    settings: CurationSettings, tasks: Tasks, members: GroupMembers, rows: Sequence[int], inputs: Sequence[tuple]
) -> tuple[np.ndarray | pa.Table, ...]:
    """Each group's representative picked among its ``members`` (:func:`copies_of_members`, reading their rows from
    the partitions' ``inputs``: :func:`part_rows` as ``tasks``), then for each partition (of ``rows`` work rows) the
    positions of its copies among its work rows and their skipped rows (a task's body: two results per partition;
    copies among the references, kept as they are, are not reported)."""

    def member_rows(positions: list[np.ndarray]) -> list[pa.Table]:
        return tasks.get([tasks.submit(part_rows, *i, at)[0] for i, at in zip(inputs, positions, strict=True)])

    copies = copies_of_members(members, member_rows, settings)
    judged = copies.copy_position < np.array(rows, np.int64)[copies.copy_part]
    part, position = copies.copy_part[judged], copies.copy_position[judged]
    skipped = split_rows(copies.skipped.filter(pa.array(judged)), part, len(rows))
    return tuple(found for k in range(len(rows)) for found in (position[part == k], skipped[k]))


def part_rows(work: pa.Table, annotated_ids: pa.Array, references: pa.Table, positions: np.ndarray) -> pa.Table:
    """The rows of :func:`judged_rows` at ``positions``."""
    return judged_rows(work, annotated_ids, references).take(pa.array(positions, pa.int64()))


def without_ids(work: pa.Table, image_ids: pa.ChunkedArray) -> pa.Table:
    """``work`` without the rows of ``image_ids``."""
    return work.filter(pc.invert(is_among(work, image_ids)))


def without_rows(work: pa.Table, *positions: np.ndarray) -> tuple[pa.Table, int]:
    """``work`` without the rows at any of ``positions`` (in order; the table itself when there are none), and
    the rows left."""
    dropped = np.concatenate([np.zeros(0, np.int64), *positions])
    if not dropped.size:
        return work, work.num_rows
    keep = np.ones(work.num_rows, bool)
    keep[dropped] = False
    kept = work.filter(pa.array(keep))
    return kept, kept.num_rows


def places_or_own(table: pa.Table) -> pa.Array:
    """Each row's ``source_uris``, or ``[source_uri]`` where it has none."""
    places = table.column("source_uris").combine_chunks()
    own = table.column("source_uri").combine_chunks()
    singles = pa.ListArray.from_arrays(pa.array(np.arange(len(own) + 1, dtype=np.int32)), own)
    missing = pc.or_kleene(pc.is_null(places), pc.equal(pc.list_value_length(places), 0))
    return pc.if_else(pc.fill_null(missing, True), singles, places)


def carried_skips(previous: pa.Table, seen_paths: Ids, seen_ids: Ids, scope: InputScope) -> pa.Table:
    """The rows of the previous version's skipped table (``previous``) that this run did not look at, carried
    as they are (as images it did not look at are kept): none of a row's paths was probed, its image is not
    among this run's, and not every path is vouched gone (``engine/refresh/scope.py``)."""
    keep = unseen_and_not_gone(
        previous.column("image_id"), places_or_own(previous), id_set(seen_paths), id_set(seen_ids), scope
    )
    return previous.filter(pa.array(keep))
