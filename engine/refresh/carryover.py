"""Carrying rows over from earlier work, so a rerun does only what is new and never duplicates a row.

Candidates are the previous version's shards and the journaled shards of unfinished (killed)
runs. Each wanted image takes its best candidate row, compared with the current stages by
:class:`engine.refresh.incremental.StagePlan`: an exact row is carried as it is; a row that needs some
stages again is stripped of what those stages did and queued to rerun only them (filters alone
run without pixels). A candidate shard whose rows all carry over exactly, under the same paths,
is referenced as it is; otherwise the exact rows are rewritten into a new shard.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.config.settings import WriterConfig
from engine.execute.stage_runner import stages_map
from engine.ingest.curation import Ids, id_set
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
STAGE_PAIRS = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))


@dataclass
class CarryOver:
    """Rows carried exactly (their ids in ``carried``, a shard's at a time; the rows in ``shards``), rows
    stripped to rerun some stages, and the images with no earlier row to reuse (``new``: work table rows,
    ``engine.ingest.probe.WORK_SCHEMA``)."""

    carried: list[pa.Array] = field(default_factory=list)
    shards: list[ShardInfo] = field(default_factory=list)
    resumed: int = 0
    rerun_pixels: pa.Table = field(default_factory=ANNOTATION_SCHEMA.empty_table)
    rerun_filters: pa.Table = field(default_factory=ANNOTATION_SCHEMA.empty_table)
    stale_specialists: set[str] = field(default_factory=set)
    new: pa.Table = field(default_factory=WORK_SCHEMA.empty_table)
    kept: int = 0

    @property
    def carried_count(self) -> int:
        return sum(len(ids) for ids in self.carried)

    def carried_ids(self) -> pa.Array:
        """The ids of the rows carried exactly."""
        return pa.concat_arrays([pa.array([], pa.string()), *self.carried])

    def rerun_ids(self) -> pa.Array:
        """The ids of the rows queued to rerun some stages."""
        columns = [self.rerun_pixels.column("image_id"), self.rerun_filters.column("image_id")]
        return pa.concat_arrays([pa.array([], pa.string()), *(c for column in columns for c in column.chunks)])

    def queue(self, rows: list[dict], level: Level) -> None:
        """Add stripped rows to rerun (kept as Arrow, far smaller than Python dicts)."""
        if not rows:
            return
        table = pa.Table.from_pylist(rows, schema=ANNOTATION_SCHEMA)
        if level == Level.REANNOTATE:
            self.rerun_pixels = pa.concat_tables([self.rerun_pixels, table])
        else:
            self.rerun_filters = pa.concat_tables([self.rerun_filters, table])


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


def _with_paths(table: pa.Table, places: pa.Array) -> pa.Table:
    """``table`` with each row's ``source_uris`` (and first ``source_uri``) set to ``places``."""
    table = table.set_column(table.schema.get_field_index("source_uris"), "source_uris", places)
    first = pc.list_element(places, 0) if len(places) else pa.array([], pa.string())
    return table.set_column(table.schema.get_field_index("source_uri"), "source_uri", first)


def plan_carry_over(
    root: Where,
    candidates: Sequence[Candidate],
    work: pa.Table,
    plan: StagePlan,
    writer_config: WriterConfig,
    run_id: str,
    on_shard: Callable[[ShardInfo, pa.Table], None] | None = None,
    keep: tuple[Ids, Sequence[ShardInfo]] = ((), ()),
) -> CarryOver:
    """Choose, for each image of ``work`` (the work table), the best candidate row, and prepare what to carry
    and rerun; ``keep``: images whose rows are carried from the given shards as they are (see
    :func:`keep_rows`). With neither (a first run) every image is new, and nothing per image is held here."""
    kept_ids = id_set(keep[0])
    if not candidates and not len(kept_ids):
        return CarryOver(new=work)
    index = WorkIndex(work.column("image_id"))
    writer = ShardWriter(
        root, "annotations", f"part-{run_id}-carried", ANNOTATION_SCHEMA, writer_config, on_shard=on_shard
    )
    chosen, plans = _choose_rows(root, candidates, index, plan)
    taker = _RowTaker(root, work.column("source_uris"), plan, plans, writer)
    for candidate, picks in zip(candidates, chosen, strict=True):
        if picks.size:  # a shard's rows are read again here: holding every shard's keys cost GBs at a million images
            taker.take(candidate, picks)
    carry = taker.carry
    keep_rows(root, keep[1], kept_ids, writer, carry)
    carry.shards.extend(writer.close())
    taken = pa.concat_arrays([carry.carried_ids(), carry.rerun_ids()])
    carry.new = work.filter(pc.invert(pc.is_in(work.column("image_id"), value_set=taken)))
    return carry


class WorkIndex:
    """Where each image id lies in the work table: the ids as bytes, sorted once and searched a shard at a
    time (about 80 bytes per image, no Python object per image)."""

    def __init__(self, ids: pa.ChunkedArray | pa.Array) -> None:
        values = _as_bytes(ids)
        self.order = np.argsort(values, kind="stable")
        self.sorted = values[self.order]

    def __len__(self) -> int:
        return len(self.sorted)

    def positions(self, ids: pa.ChunkedArray | pa.Array) -> np.ndarray:
        """Each of ``ids``' row in the work table, -1 where it has none."""
        probes = _as_bytes(ids)
        if not len(self.sorted) or not len(probes):
            return np.full(len(probes), -1, np.int64)
        at = np.minimum(np.searchsorted(self.sorted, probes), len(self.sorted) - 1)
        return np.where(self.sorted[at] == probes, self.order[at], -1)


def _as_bytes(ids: pa.ChunkedArray | pa.Array, chunk: int = 65_536) -> np.ndarray:
    """Arrow strings as a NumPy bytes array (converted a chunk at a time, so few Python objects live at once)."""
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    width = max(1, int(pc.max(pc.binary_length(ids)).as_py() or 0)) if len(ids) else 1
    values = np.empty(len(ids), f"S{width}")
    for start in range(0, len(ids), chunk):
        part = ids.slice(start, chunk).cast(pa.binary()).to_numpy(zero_copy_only=False)
        values[start : start + len(part)] = part
    return values


# A choice per wanted image: ``shard``/``row`` of its best candidate row and that row's plan (-1: none yet).
CHOICE = np.dtype([("level", np.int8), ("shard", np.int32), ("row", np.int32), ("plan", np.int32)])


def _choose_rows(
    root: Where, candidates: Sequence[Candidate], index: WorkIndex, plan: StagePlan
) -> tuple[list[np.ndarray], list[RowPlan]]:
    """Per candidate shard, the rows chosen from it (:data:`PICKS`, by row), and the plans they name: each wanted
    image's best row (the least work to redo, then the earliest candidate). One shard's keys are read at a
    time; rows that recorded the same stages and errors share one plan, so Python work is per distinct plan,
    and what is held per image is one :data:`CHOICE`."""
    best = np.zeros(len(index), CHOICE)
    best["level"], best["shard"] = len(Level), -1
    plans = _PlanBook(plan)
    for shard_index, candidate in enumerate(candidates):
        keys = read_shard(root, candidate.shard, KEY_COLUMNS)
        positions = index.positions(keys.column("image_id"))
        rows = np.flatnonzero(positions >= 0)
        if not rows.size:
            continue
        plan_ids = plans.of(keys.take(pa.array(rows)))
        levels, positions = plans.levels[plan_ids], positions[rows]
        # One row per image in this shard (the least work, then the first), kept where it beats earlier shards'.
        order = np.lexsort((rows, levels, positions))
        first = order[np.r_[True, positions[order][1:] != positions[order][:-1]]]
        better = first[levels[first] < best["level"][positions[first]]]
        chosen = positions[better]
        best["level"][chosen], best["shard"][chosen] = levels[better], shard_index
        best["row"][chosen], best["plan"][chosen] = rows[better], plan_ids[better]
    picked = np.flatnonzero(best["shard"] >= 0)
    by_shard = picked[np.argsort(best["shard"][picked], kind="stable")]
    bounds = np.searchsorted(best["shard"][by_shard], np.arange(len(candidates) + 1))
    picks: list[np.ndarray] = []
    for shard_index in range(len(candidates)):
        at = by_shard[bounds[shard_index] : bounds[shard_index + 1]]
        shard_picks = np.zeros(len(at), PICKS)
        shard_picks["row"], shard_picks["position"] = best["row"][at], at
        shard_picks["plan"] = best["plan"][at]
        picks.append(shard_picks[np.argsort(shard_picks["row"], kind="stable")])
    return picks, plans.plans


PICKS = np.dtype([("row", np.int32), ("plan", np.int32), ("position", np.int64)])


class _PlanBook:
    """The :class:`RowPlan` of each distinct (recorded stages, errors) seen, numbered; ``levels`` by number."""

    def __init__(self, plan: StagePlan) -> None:
        self.plan = plan
        self.numbers: dict[str, int] = {}
        self.plans: list[RowPlan] = []
        self.levels = np.zeros(0, np.int8)

    def of(self, keys: pa.Table) -> np.ndarray:
        """Each key row's plan number (a plan is classified once per distinct key)."""
        encoded = pc.dictionary_encode(_row_keys(keys))
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        distinct, first_rows = np.unique(codes, return_index=True)
        numbers = np.zeros(len(encoded.dictionary), np.int32)
        for code, row in zip(distinct.tolist(), first_rows.tolist(), strict=True):
            key = encoded.dictionary[code].as_py()
            if key not in self.numbers:
                cells = keys.slice(row, 1).to_pylist()[0]
                self.numbers[key] = len(self.plans)
                self.plans.append(self.plan.classify(stages_map(cells["stages"]), failure_counts(cells["errors"])))
                self.levels = np.append(self.levels, np.int8(self.plans[-1].level))
            numbers[code] = self.numbers[key]
        return numbers[codes]


def _row_keys(keys: pa.Table) -> pa.Array:
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


class _RowTaker:
    """Takes the chosen rows of each candidate shard into a :class:`CarryOver`; ``places``: the work table's
    ``source_uris``, which the taken rows get."""

    def __init__(
        self, root: Where, places: pa.ChunkedArray, plan: StagePlan, plans: list[RowPlan], writer: ShardWriter
    ) -> None:
        self.root, self.places, self.plan, self.plans, self.writer = root, places, plan, plans, writer
        self.exact_plans = np.array([p.level == Level.EXACT for p in plans], bool)
        self.carry = CarryOver()

    def take(self, candidate: Candidate, picks: np.ndarray) -> None:
        """Carry the exact rows (the shard as it is when all its rows are exact under the same paths, else
        rewritten), and queue the others stripped of what must run again."""
        current = read_shard(self.root, candidate.shard, PLACE_COLUMNS)
        is_exact = self.exact_plans[picks["plan"]]
        exact = np.zeros(current.num_rows, bool)
        exact[picks["row"][is_exact]] = True
        self.carry.carried.append(current.column("image_id").combine_chunks().filter(pa.array(exact)))
        if candidate.resumed:
            self.carry.resumed += int(exact.sum())
        places = self.places.take(pa.array(picks["position"][is_exact])).combine_chunks()
        if exact.all() and places.equals(current.column("source_uris").combine_chunks()):
            self.carry.shards.append(candidate.shard)
            return
        table = conform(read_shard(self.root, candidate.shard))  # shards of an older schema version gain its columns
        if exact.any():
            self.writer.write(_with_paths(table.filter(pa.array(exact)), places))
        self._queue_stale(table, picks[~is_exact])

    def _queue_stale(self, table: pa.Table, stale: np.ndarray) -> None:
        if not stale.size:
            return
        rows = table.take(pa.array(stale["row"])).to_pylist()
        places = self.places.take(pa.array(stale["position"])).to_pylist()
        queued: dict[Level, list[dict]] = {Level.REFILTER: [], Level.REANNOTATE: []}
        for plan_number, row, uris in zip(stale["plan"].tolist(), rows, places, strict=True):
            row_plan = self.plans[plan_number]
            record = ImageRecord.from_row(row)
            self.plan.strip(record, row_plan)
            record.source_uris = list(uris)
            record.source_uri = record.source_uris[0]
            queued[row_plan.level].append(record.to_row())
            self.carry.stale_specialists |= row_plan.stale
        for level, rows_to_rerun in queued.items():
            self.carry.queue(rows_to_rerun, level)


def keep_rows(
    root: Where, shards: Sequence[ShardInfo], image_ids: pa.Array, writer: ShardWriter, carry: CarryOver
) -> None:
    """Carry the rows of ``image_ids`` from ``shards`` exactly as they are (images this run did not look
    at, see ``engine/refresh/scope.py``): a shard holding only such rows is referenced, others are copied."""
    if not len(image_ids):
        return
    for shard in shards:
        ids = read_shard(root, shard, ["image_id"]).column(0)
        mask = pc.is_in(ids, value_set=image_ids)
        hits = pc.sum(mask).as_py() or 0
        if hits == 0:
            continue
        if hits == len(ids):
            carry.shards.append(shard)
        else:
            writer.write(conform(read_shard(root, shard)).filter(mask))
        carry.carried.append(pc.filter(ids, mask).combine_chunks())
        carry.kept += hits


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
