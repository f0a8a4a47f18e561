"""Carrying rows over from earlier work, so a rerun does only what is new and never duplicates a row.

Candidates are the previous version's shards and the journaled shards of unfinished (killed)
runs. Each wanted image takes its best candidate row, compared with the current stages by
:class:`engine.refresh.incremental.StagePlan`: an exact row is carried as it is; a row that needs some
stages again is stripped of what those stages did and queued to rerun only them (filters alone
run without pixels). A candidate shard whose rows all carry over exactly, under the same paths,
is referenced as it is; otherwise the exact rows are rewritten into a new shard. The steps run per batch
of shards and per image-id partition (``engine/refresh/carry_parts.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.config.settings import RayConfig, WriterConfig
from engine.ingest.curation import Ids, as_ids
from engine.ingest.image_bytes import LOCATED_ROWS
from engine.ingest.probe import WORK_SCHEMA
from engine.partitions.keys import batches_by_rows, ids_by_partition
from engine.partitions.parts import IDS, Parts, column_of, empty_parts, in_process, joined_parts
from engine.refresh.carry_parts import (
    BatchPlan,
    OnShard,
    Routes,
    Source,
    Taken,
    choose_in_partition,
    source_rows,
    take_batch,
)
from engine.refresh.incremental import StagePlan
from engine.store.journal import UnfinishedRun
from engine.store.location import Where
from engine.store.manifest import Manifest
from engine.store.writer import ShardInfo
from schemas.arrow import ANNOTATION_SCHEMA


@dataclass
class CarryOver:
    """Rows carried exactly (their ids in ``carried``, in the work table's id partitions; the rows in ``shards``), rows
    stripped to rerun some stages (in parts, a part per batch of sources: on Ray in the object store), and the
    images with no earlier row to reuse (``new``: work table rows, ``engine.ingest.probe.WORK_SCHEMA``, in the
    work table's image-id partitions). Rows to re-annotate carry their locators
    (:data:`~engine.ingest.image_bytes.LOCATED_ROWS`); rows to re-filter need no pixels."""

    carried: Parts = field(default_factory=lambda: in_process(IDS.empty_table()))
    shards: list[ShardInfo] = field(default_factory=list)
    resumed: int = 0
    rerun_pixels: Parts = field(default_factory=lambda: in_process(LOCATED_ROWS.empty_table()))
    rerun_filters: Parts = field(default_factory=lambda: in_process(ANNOTATION_SCHEMA.empty_table()))
    stale_specialists: set[str] = field(default_factory=set)
    new: Parts = field(default_factory=lambda: in_process(WORK_SCHEMA.empty_table()))
    kept: int = 0

    @property
    def carried_count(self) -> int:
        return self.carried.rows

    def carried_ids(self) -> pa.Array:
        """The ids of the rows carried exactly, gathered here."""
        return column_of(self.carried.gather(), "image_id")


ROWS_PER_BATCH = RayConfig().plan_part_rows  # the rows of a batch of source shards, by default


@dataclass(frozen=True)
class Candidate:
    """A shard that may hold rows to carry over; ``resumed`` when a killed run wrote it."""

    shard: ShardInfo
    resumed: bool = False


def resumable(runs: list[UnfinishedRun], full: bool, config_fingerprint: str) -> list[Candidate]:
    """Shards of killed runs to offer for carry-over; under ``--full`` only those of a ``--full`` run of this config."""
    return [
        Candidate(shard, resumed=True)
        for run in runs
        if not full or (run.meta.get("full") and run.meta.get("config_fingerprint") == config_fingerprint)
        for shard in run.shards
    ]


def plan_carry_over(
    root: Where,
    candidates: Sequence[Candidate],
    work: Parts | pa.Table,
    plan: StagePlan,
    writer_config: WriterConfig,
    run_id: str,
    on_shard: OnShard | None = None,
    keep: tuple[Parts, Sequence[ShardInfo]] | None = None,
    rows_per_batch: int = ROWS_PER_BATCH,
) -> CarryOver:
    """Choose, for each image of ``work`` (the work table, in image-id partitions), the best candidate row, and
    prepare what to carry and rerun; ``keep``: images whose rows are carried from the given shards as they are
    (images this run did not look at, ``engine/refresh/scope.py``: their ids, :data:`~engine.partitions.parts.IDS`
    in the work table's partitions). With neither (a first run) every image is new, and nothing is read.

    The steps of ``engine/refresh/carry_parts.py`` run where the work table's partitions run (Ray tasks for a
    large run): the sources' rows are read in batches of about ``rows_per_batch`` rows and cut by image id,
    each partition chooses the rows of its images, and each batch takes (or references) its chosen rows. The
    driver gets back shard descriptions and counts; the carried ids (in id partitions) and the rows to rerun stay
    where their batches ran."""
    work = work if isinstance(work, Parts) else in_process(work)
    kept_ids, kept_shards = keep if keep is not None and keep[0].rows else (None, ())
    if not candidates and kept_ids is None:
        return CarryOver(carried=empty_parts(IDS, len(work.handles)), new=work)
    tasks, partitions = work.tasks, len(work.handles)
    sources = _sources(candidates, kept_shards)
    batches = _batches(sources, rows_per_batch)
    routes = Routes(
        np.array([s.candidate for s in sources], bool),
        np.array([s.keep for s in sources], bool),
        np.repeat(np.arange(len(batches), dtype=np.int32), [len(batch) for _, batch in batches]),
        len(batches),
    )
    keyed = [
        tasks.submit(source_rows, root, batch, first, plan, partitions, returns=partitions) for first, batch in batches
    ]
    no_ids = tasks.put(pa.array([], pa.string()))
    kept_parts = kept_ids.column("image_id") if kept_ids is not None else [no_ids] * partitions
    chosen = [
        tasks.submit(
            choose_in_partition, handle, kept, routes, *[pieces[k] for pieces in keyed], returns=routes.batches + 2
        )
        for k, (handle, kept) in enumerate(zip(work.handles, kept_parts, strict=True))
    ]
    handles = []
    for number, (first, batch) in enumerate(batches):
        prefix = f"part-{run_id}-carried-{number:05d}"
        batch_plan = BatchPlan(root, plan, writer_config, prefix, on_shard, partitions)
        picks = [c[number] for c in chosen]
        handles.append(tasks.submit(take_batch, batch_plan, batch, first, *picks, returns=3 + partitions))
    new_rows = tasks.get([c[-1] for c in chosen])
    taken = tasks.get([h[0] for h in handles])
    carry = _carry_over(taken, Parts([c[-2] for c in chosen], tasks, new_rows, work.schema))
    carry.carried = joined_parts(tasks, [h[3:] for h in handles], IDS, partitions)
    carry.rerun_pixels = Parts([h[1] for h in handles], tasks, [t.reannotate for t in taken], LOCATED_ROWS)
    carry.rerun_filters = Parts([h[2] for h in handles], tasks, [t.refilter for t in taken], ANNOTATION_SCHEMA)
    return carry


def _sources(candidates: Sequence[Candidate], keep: Sequence[ShardInfo]) -> list[Source]:
    """The candidates in order (earlier ones win ties), the first of each path marked to keep rows when it is
    one of ``keep``, then the shards of ``keep`` that are not candidates."""
    sources = [Source(c.shard, resumed=c.resumed) for c in candidates]
    first = {}
    for number, source in enumerate(sources):
        first.setdefault(source.shard.path, number)
    for shard in keep:
        if shard.path in first:
            sources[first[shard.path]] = replace(sources[first[shard.path]], keep=True)
        else:
            sources.append(Source(shard, candidate=False, keep=True))
    return sources


def _batches(sources: list[Source], rows: int) -> list[tuple[int, list[Source]]]:
    """``sources`` in consecutive batches of about ``rows`` rows (one source at least), each with its first number."""
    return [(b.start, sources[b.start : b.stop]) for b in batches_by_rows([s.shard.rows for s in sources], rows)]


def _carry_over(taken: Sequence[Taken], new: Parts) -> CarryOver:
    """The batches' outcomes as one :class:`CarryOver`: shards referenced as they are first (in source order),
    then those written."""
    carry = CarryOver(new=new)
    for batch in taken:
        carry.shards += batch.referenced
        carry.resumed += batch.resumed
        carry.kept += batch.kept
        carry.stale_specialists |= batch.stale_specialists
    carry.shards += [shard for batch in taken for shard in batch.written]
    return carry


def missing_ids(work: Parts, earlier_ids: Ids | Parts) -> pa.Array:
    """The ids of ``work`` (in image-id partitions) that are not among ``earlier_ids`` (ids, or tables in the same
    id partitions with an ``image_id`` column), a partition at a time."""
    tasks, count = work.tasks, len(work.handles)
    if isinstance(earlier_ids, Parts):
        by_partition = earlier_ids.column("image_id")
    else:
        by_partition = [tasks.put(ids) for ids in ids_by_partition(as_ids(earlier_ids), count)]
    handles = [tasks.submit(ids_not_in, part, ids)[0] for part, ids in zip(work.handles, by_partition, strict=True)]
    return pa.concat_arrays([pa.array([], pa.string()), *tasks.get(handles)])


def ids_not_in(work: pa.Table, image_ids: pa.Array) -> pa.Array:
    """The ids of ``work`` that are not among ``image_ids``."""
    ids = work.column("image_id").combine_chunks()
    return ids.filter(pc.invert(pc.is_in(ids, value_set=image_ids)))


def older_candidates(
    root: Where, history: Sequence[Manifest], missing: pa.Array, tombstoned_ids: Callable[[Manifest], pa.Array]
) -> list[Candidate]:
    """Shards of versions before the previous one that hold rows of ``missing`` images (ids wanted now, not
    in the previous version): an image that left version N (its tombstone) has its last row in version
    N-1. Only tombstone tables are read unless one names a missing image, so a run with nothing missing
    reads no older shard."""
    candidates: list[Candidate] = []
    for earlier, later in zip(reversed(history[:-1]), reversed(history[1:]), strict=True):
        if not len(missing):
            break
        found = pc.is_in(missing, value_set=tombstoned_ids(later))
        if pc.any(found).as_py():
            candidates += [Candidate(shard) for shard in earlier.shards]
            missing = missing.filter(pc.invert(found))
    return candidates
