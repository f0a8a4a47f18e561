"""Carrying rows over from earlier work, so a rerun does only what is new and never duplicates a row.

Candidates are the previous version's shards and the journaled shards of unfinished (killed)
runs. Each wanted image takes its best candidate row, compared with the current stages by
:class:`engine.refresh.incremental.StagePlan`: an exact row is carried as it is; a row that needs some
stages again is stripped of what those stages did and queued to rerun only them (filters alone
run without pixels). A candidate shard whose rows all carry over exactly, under the same paths,
is referenced as it is; otherwise the exact rows are rewritten into a new shard.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from engine.config.settings import WriterConfig
from engine.execute.stage_runner import stages_map
from engine.ingest.probe import WORK_SCHEMA
from engine.refresh.incremental import Level, RowPlan, StagePlan, failure_counts
from engine.store.journal import UnfinishedRun
from engine.store.location import Where
from engine.store.manifest import Manifest
from engine.store.reader import read_shard
from engine.store.writer import ShardInfo, ShardWriter
from schemas.arrow import ANNOTATION_SCHEMA, conform
from schemas.records import ImageRecord

KEY_COLUMNS = ["image_id", "stages", "errors"]  # what choosing a row reads
PLACE_COLUMNS = ["image_id", "source_uris"]  # what taking the chosen rows reads


@dataclass
class CarryOver:
    """Rows carried exactly (``image_ids``, in ``shards``), rows stripped to rerun some stages, and the
    images with no earlier row to reuse (``new``: work table rows, ``engine.ingest.probe.WORK_SCHEMA``)."""

    image_ids: set[str] = field(default_factory=set)
    shards: list[ShardInfo] = field(default_factory=list)
    resumed: int = 0
    rerun_pixels: pa.Table = field(default_factory=ANNOTATION_SCHEMA.empty_table)
    rerun_filters: pa.Table = field(default_factory=ANNOTATION_SCHEMA.empty_table)
    rerun_ids: set[str] = field(default_factory=set)
    stale_specialists: set[str] = field(default_factory=set)
    new: pa.Table = field(default_factory=WORK_SCHEMA.empty_table)
    kept: int = 0

    def queue(self, rows: list[dict], level: Level) -> None:
        """Add stripped rows to rerun (kept as Arrow, far smaller than Python dicts)."""
        if not rows:
            return
        table = pa.Table.from_pylist(rows, schema=ANNOTATION_SCHEMA)
        if level == Level.REANNOTATE:
            self.rerun_pixels = pa.concat_tables([self.rerun_pixels, table])
        else:
            self.rerun_filters = pa.concat_tables([self.rerun_filters, table])
        self.rerun_ids.update(row["image_id"] for row in rows)


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


def _with_paths(table: pa.Table, uris: list[list[str]]) -> pa.Table:
    table = table.set_column(
        table.schema.get_field_index("source_uris"), "source_uris", pa.array(uris, type=pa.list_(pa.string()))
    )
    return table.set_column(
        table.schema.get_field_index("source_uri"), "source_uri", pa.array([u[0] for u in uris], pa.string())
    )


def plan_carry_over(
    root: Where,
    candidates: Sequence[Candidate],
    work: pa.Table,
    plan: StagePlan,
    writer_config: WriterConfig,
    run_id: str,
    on_shard: Callable[[ShardInfo, pa.Table], None] | None = None,
    keep: tuple[set[str], Sequence[ShardInfo]] = (set(), ()),
) -> CarryOver:
    """Choose, for each image of ``work`` (the work table), the best candidate row, and prepare what to carry
    and rerun; ``keep``: images whose rows are carried from the given shards as they are (see
    :func:`keep_rows`). With neither (a first run) every image is new, and nothing per image is held here."""
    if not candidates and not keep[0]:
        return CarryOver(new=work)
    wanted = dict(zip(work.column("image_id").to_pylist(), work.column("source_uris").to_pylist(), strict=True))
    writer = ShardWriter(
        root, "annotations", f"part-{run_id}-carried", ANNOTATION_SCHEMA, writer_config, on_shard=on_shard
    )
    taker = _RowTaker(root, wanted, plan, writer)
    for candidate, picks in zip(candidates, _choose_rows(root, candidates, wanted, plan), strict=True):
        if picks:  # a shard's rows are read again here: holding every shard's keys cost GBs at a million images
            taker.take(candidate, read_shard(root, candidate.shard, PLACE_COLUMNS).to_pylist(), picks)
    carry = taker.carry
    keep_rows(root, keep[1], keep[0], writer, carry)
    carry.shards.extend(writer.close())
    taken = pa.array(sorted(carry.image_ids | carry.rerun_ids), pa.string())
    carry.new = work.filter(pc.invert(pc.is_in(work.column("image_id"), value_set=taken)))
    return carry


def _choose_rows(
    root: Where, candidates: Sequence[Candidate], wanted: Collection[str], plan: StagePlan
) -> list[dict[int, RowPlan]]:
    """Per candidate shard, row index -> plan of the rows chosen from it: each wanted image's best row
    (the least work to redo, then the earliest candidate). One shard's keys are read at a time, and rows
    that recorded the same stages and errors share one plan: what is held is the best choice per image."""
    best: dict[str, tuple[int, int, int, RowPlan]] = {}
    plans: dict[tuple[Any, ...], RowPlan] = {}
    for shard_index, candidate in enumerate(candidates):
        keys = read_shard(root, candidate.shard, KEY_COLUMNS)
        for row_index, row in enumerate(keys.to_pylist()):
            image_id = row["image_id"]
            if image_id not in wanted:
                continue
            recorded, failures = stages_map(row["stages"]), failure_counts(row["errors"])
            key = (tuple(sorted(recorded.items())), tuple(sorted(failures.items())))
            row_plan = plans.get(key)
            if row_plan is None:
                row_plan = plans[key] = plan.classify(recorded, failures)
            choice = (int(row_plan.level), shard_index, row_index, row_plan)
            if image_id not in best or choice[:3] < best[image_id][:3]:
                best[image_id] = choice
    chosen: list[dict[int, RowPlan]] = [{} for _ in candidates]
    for _, shard_index, row_index, row_plan in best.values():
        chosen[shard_index][row_index] = row_plan
    return chosen


class _RowTaker:
    """Takes the chosen rows of each candidate shard into a :class:`CarryOver`."""

    def __init__(self, root: Where, wanted: dict[str, list[str]], plan: StagePlan, writer: ShardWriter) -> None:
        self.root, self.wanted, self.plan, self.writer = root, wanted, plan, writer
        self.carry = CarryOver()

    def take(self, candidate: Candidate, rows: list[dict], picks: dict[int, RowPlan]) -> None:
        """Carry the exact rows (the shard as it is when all its rows are exact under the same paths, else
        rewritten), and queue the others stripped of what must run again."""
        exact = [picks.get(i) is not None and picks[i].level == Level.EXACT for i in range(len(rows))]
        self.carry.image_ids.update(row["image_id"] for row, kept in zip(rows, exact, strict=True) if kept)
        if candidate.resumed:
            self.carry.resumed += sum(exact)
        if all(exact) and all(list(row["source_uris"]) == self.wanted[row["image_id"]] for row in rows):
            self.carry.shards.append(candidate.shard)
            return
        table = conform(read_shard(self.root, candidate.shard))  # shards of an older schema version gain its columns
        if any(exact):
            kept = table.filter(pa.array(exact))
            self.writer.write(_with_paths(kept, [self.wanted[i] for i in kept.column("image_id").to_pylist()]))
        self._queue_stale(table, picks)

    def _queue_stale(self, table: pa.Table, picks: dict[int, RowPlan]) -> None:
        stale = [(i, row_plan) for i, row_plan in sorted(picks.items()) if row_plan.level != Level.EXACT]
        stale_rows = table.take([i for i, _ in stale]).to_pylist() if stale else []
        queued: dict[Level, list[dict]] = {Level.REFILTER: [], Level.REANNOTATE: []}
        for (_, row_plan), row in zip(stale, stale_rows, strict=True):
            record = ImageRecord.from_row(row)
            self.plan.strip(record, row_plan)
            record.source_uris = self.wanted[record.image_id]
            record.source_uri = record.source_uris[0]
            queued[row_plan.level].append(record.to_row())
            self.carry.stale_specialists |= row_plan.stale
        for level, rows_to_rerun in queued.items():
            self.carry.queue(rows_to_rerun, level)


def keep_rows(
    root: Where, shards: Sequence[ShardInfo], image_ids: set[str], writer: ShardWriter, carry: CarryOver
) -> None:
    """Carry the rows of ``image_ids`` from ``shards`` exactly as they are (images this run did not look
    at, see ``engine/refresh/scope.py``): a shard holding only such rows is referenced, others are copied."""
    if not image_ids:
        return
    wanted = pa.array(sorted(image_ids), pa.string())
    for shard in shards:
        ids = read_shard(root, shard, ["image_id"]).column(0)
        mask = pc.is_in(ids, value_set=wanted)
        hits = pc.sum(mask).as_py() or 0
        if hits == 0:
            continue
        if hits == len(ids):
            carry.shards.append(shard)
        else:
            writer.write(conform(read_shard(root, shard)).filter(mask))
        carry.image_ids.update(pc.filter(ids, mask).to_pylist())
        carry.kept += hits


def older_candidates(
    root: Where, history: Sequence[Manifest], missing: set[str], tombstoned_ids: Callable[[Manifest], set[str]]
) -> list[Candidate]:
    """Shards of versions before the previous one that hold rows of ``missing`` images (wanted now, not
    in the previous version): an image that left version N (its tombstone) has its last row in version
    N-1. Only tombstone tables are read unless one names a missing image, so a run with nothing missing
    reads no older shard."""
    candidates: list[Candidate] = []
    for earlier, later in zip(reversed(history[:-1]), reversed(history[1:]), strict=True):
        if not missing:
            break
        found = tombstoned_ids(later) & missing
        if found:
            candidates += [Candidate(shard) for shard in earlier.shards]
            missing = missing - found
    return candidates
