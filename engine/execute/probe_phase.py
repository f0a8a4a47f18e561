"""The probe phase in parts: the listing's URI ranges split against the previous probe index, the sources
to probe probed, the new probe index written in parts and its rows grouped by content per image-id partition.

Below :attr:`ProbePlan.rows_per_part` sources (one range) every part runs in this process. Above, each part is a
Ray task (``engine/partitions/tasks.py``): the cache split reads only its range of the previous index, the
workers write the new index's parts, and each id partition's rows go from the task that made them to the
task that groups them through the object store. The driver gets back each range's sources to probe (listing
rows, for ``--limit``); each partition's work table (with each image's locator) stays in the object store, for
the curation phase's tasks (``engine.ingest.curation.curate_parts``) and the annotate phase's
(``engine/execute/annotate_input.py``), and so do the paths seen with their ids and the quarantined rows, which
the partition's task writes at the end (``engine/store/side_tables.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from engine.config.settings import WriterConfig
from engine.ingest.listing import split_at_limit
from engine.ingest.listing_ranges import RangedListing
from engine.ingest.probe import (
    WORK_SCHEMA,
    fits_in_process,
    probe_batch,
    probe_refs_on_ray,
)
from engine.ingest.probe_parts import QUARANTINED, SEEN_PATHS, group_partition, index_part, split_range
from engine.ingest.sources import SOURCE_SCHEMA
from engine.partitions.parts import Parts
from engine.partitions.tasks import IN_PROCESS, ON_RAY, Tasks
from engine.store.location import Where
from engine.store.writer import ShardInfo


@dataclass(frozen=True)
class ProbePlan:
    """What the probe phase needs: the listing (``SOURCE_SCHEMA`` rows, sorted by URI: in its ranges, or one table
    cut into ranges of ``rows_per_part``), the previous probe index's parts (None: no cache to use), where the new
    parts go (``root``, ``folder/part-<run_id>-<k>``), the probe limits, ``--limit``, and ``rows_per_part``."""

    listing: pa.Table | RangedListing
    previous: list[ShardInfo] | None
    root: Where
    run_id: str
    limits: dict[str, Any]
    writer: WriterConfig
    limit: int | None = None
    rows_per_part: int = 262_144
    folder: str = "probes"


@dataclass(frozen=True)
class ProbeOutcome:
    """The work table (one row per distinct image) in its image-id partitions, in id order (the partitions stay
    where they were made: on Ray, in the object store), the quarantined rows (:data:`QUARANTINED`) and the paths
    seen (:data:`~engine.ingest.probe_parts.SEEN_PATHS`) in the same partitions, the new probe index's parts, and
    the counts."""

    work: Parts
    quarantined: Parts
    seen_parts: Parts
    index: list[ShardInfo]
    cached: int
    hashed: int
    unchanged: bool
    seconds: float
    deferred: pa.ChunkedArray = field(default_factory=lambda: pa.chunked_array([], pa.string()))
    """The URIs of listed files ``--limit`` left for a later run."""


def probe_in_parts(plan: ProbePlan, start_ray: Callable[[], None], tasks: Tasks | None = None) -> ProbeOutcome:
    """Probe ``plan.listing`` (see the module's docstring); ``start_ray`` is called before any Ray task.
    ``tasks``: where the parts run (by default here for one range, on Ray for more)."""
    started = time.perf_counter()
    listing = plan.listing
    if not isinstance(listing, RangedListing):
        listing = RangedListing.of(listing, plan.rows_per_part)
    if tasks is None:
        tasks = ON_RAY if len(listing.ranges) > 1 else IN_PROCESS
    if tasks.on_ray:
        start_ray()
    hits, misses = _split(plan, listing, tasks)
    taken, deferred = split_at_limit(misses, plan.limit)
    fresh = _probe(taken, plan.limits, tasks, start_ray)
    if fresh and not isinstance(fresh[0], pa.Table):
        tasks = ON_RAY  # probed as Ray tasks: the rows stay in the object store, and the parts follow them there
    hit_rows = sum(rows for _, rows in hits)
    unchanged = plan.previous is not None and not misses.num_rows and hit_rows == sum(p.rows for p in plan.previous)
    partitions = max(1, math.ceil((hit_rows + taken.num_rows) / plan.rows_per_part))
    hit_batches = [[hit] for hit, rows in hits if rows]
    batches = hit_batches + _even_groups(fresh, math.ceil(taken.num_rows / plan.rows_per_part))
    written, pieces = _index_parts(plan, batches, partitions, tasks, unchanged)
    grouped = [tasks.submit(group_partition, *[p[k] for p in pieces], returns=4) for k in range(partitions)]
    counts = tasks.get([g[3] for g in grouped])
    work, quarantined, seen = (
        Parts([g[at] for g in grouped], tasks, [c[at] for c in counts], schema)
        for at, schema in ((0, WORK_SCHEMA), (1, QUARANTINED), (2, SEEN_PATHS))
    )
    index = list(plan.previous or []) if unchanged else [info for info in tasks.get(written) if info is not None]
    seconds = time.perf_counter() - started
    return ProbeOutcome(work, quarantined, seen, index, hit_rows, taken.num_rows, unchanged, seconds, deferred)


# Probe index rows per block once probed in parts: some hundreds of KiB, above Ray's 100 KiB for keeping a
# result in its owner's memory (the driver's).
PROBED_BLOCK_ROWS = 4096


def _split(plan: ProbePlan, listing: RangedListing, tasks: Tasks) -> tuple[list[tuple[Any, int]], pa.Table]:
    """Each range's cache hits (a handle, and its row count) and the sources to probe of every range, in
    URI order (all of them without a cache)."""
    if plan.previous is None:
        return [], listing.table()
    lows = listing.lows
    handles = [
        tasks.submit(split_range, table, plan.root, plan.previous, low, high, returns=3)
        for table, low, high in zip(listing.ranges, lows, [*lows[1:], None], strict=True)
    ]
    found = tasks.get([handle for hit, miss, count in handles for handle in (miss, count)])
    misses, counts = found[0::2], found[1::2]
    hits = [(hit, count) for (hit, _, _), count in zip(handles, counts, strict=True)]
    return hits, pa.concat_tables([SOURCE_SCHEMA.empty_table(), *misses])


def _probe(listing: pa.Table, limits: dict[str, Any], tasks: Tasks, start_ray: Callable[[], None]) -> list[Any]:
    """The probe index rows of ``listing``: one table, probed here when the sources are few bytes in all (and
    the parts run here), else the refs of Ray tasks' blocks, combined into blocks of ``PROBED_BLOCK_ROWS`` rows
    when the parts run on Ray (more than one part's rows: too many small blocks to keep in the driver)."""
    if not listing.num_rows:
        return []
    if not tasks.on_ray and fits_in_process(listing):
        return [probe_batch(listing, **limits)]
    start_ray()
    return probe_refs_on_ray(listing, limits, PROBED_BLOCK_ROWS if tasks.on_ray else None)


def _even_groups(handles: list[Any], count: int) -> list[list[Any]]:
    """``handles`` in ``count`` groups (at least one when there are any) of consecutive handles."""
    if not handles:
        return []
    size = math.ceil(len(handles) / max(1, min(count, len(handles))))
    return [handles[i : i + size] for i in range(0, len(handles), size)]


def _index_parts(
    plan: ProbePlan, batches: list[list[Any]], partitions: int, tasks: Tasks, unchanged: bool
) -> tuple[list[Any], list[list[Any]]]:
    """A part of the new probe index written from each batch of handles of probe index rows, and each part's
    rows cut into ``partitions`` by image id. An unchanged index is not written again."""
    written, pieces = [], []
    for number, batch in enumerate(batches):
        relative = None if unchanged else f"{plan.folder}/part-{plan.run_id}-{number:05d}.parquet"
        found = tasks.submit(
            index_part,
            plan.root,
            relative,
            plan.writer,
            partitions,
            number % partitions,
            *batch,
            returns=1 + partitions,
        )
        written.append(found[0])
        pieces.append(found[1:])
    return written, pieces
