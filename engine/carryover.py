"""Carrying rows over from earlier work, so a rerun does only what is new and never duplicates a row.

Candidates are the previous version's shards and the journaled shards of unfinished (killed)
runs. Each wanted image takes its best candidate row, compared with the current stages by
:class:`engine.incremental.StagePlan`: an exact row is carried as it is; a row that needs some
stages again is stripped of what those stages did and queued to rerun only them (filters alone
run without pixels). A candidate shard whose rows all carry over exactly, under the same paths,
is referenced as it is; otherwise the exact rows are rewritten into a new shard.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from engine.config import WriterConfig
from engine.incremental import Level, RowPlan, StagePlan
from engine.ingest import WorkItem
from engine.reader import shard_error
from engine.stage_runner import stages_map
from engine.writer import ShardInfo, ShardWriter
from schemas.arrow import ANNOTATION_SCHEMA
from schemas.records import ImageRecord

KEY_COLUMNS = ["image_id", "source_uris", "stages"]


@dataclass
class CarryOver:
    """Rows carried exactly (``image_ids``, in ``shards``) and rows stripped to rerun some stages."""

    image_ids: set[str] = field(default_factory=set)
    shards: list[ShardInfo] = field(default_factory=list)
    resumed: int = 0
    rerun_pixels: pa.Table = field(default_factory=ANNOTATION_SCHEMA.empty_table)
    rerun_filters: pa.Table = field(default_factory=ANNOTATION_SCHEMA.empty_table)
    rerun_ids: set[str] = field(default_factory=set)
    stale_specialists: set[str] = field(default_factory=set)

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


def read_shard(root: Path, shard: ShardInfo, columns: list[str] | None = None) -> pa.Table:
    """Read one shard listed by a manifest, with a clear error if it is missing or corrupt."""
    path = root / shard.path
    try:
        return pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowInvalid) as error:
        raise shard_error(root, shard.path, error) from None


def _with_paths(table: pa.Table, uris: list[list[str]]) -> pa.Table:
    table = table.set_column(
        table.schema.get_field_index("source_uris"), "source_uris", pa.array(uris, type=pa.list_(pa.string()))
    )
    return table.set_column(
        table.schema.get_field_index("source_uri"), "source_uri", pa.array([u[0] for u in uris], pa.string())
    )


def plan_carry_over(
    root: Path,
    candidates: Sequence[Candidate],
    work: list[WorkItem],
    plan: StagePlan,
    writer_config: WriterConfig,
    run_id: str,
    on_shard: Callable[[ShardInfo, pa.Table], None] | None = None,
) -> CarryOver:
    """Choose, for each image of ``work``, the best candidate row, and prepare what to carry and rerun."""
    carry = CarryOver()
    wanted = {item.image_id: list(item.source_uris) for item in work}
    keys = [read_shard(root, c.shard, KEY_COLUMNS).to_pylist() for c in candidates]
    best: dict[str, tuple[int, int, int, RowPlan]] = {}
    for shard_index, rows in enumerate(keys):
        for row_index, row in enumerate(rows):
            image_id = row["image_id"]
            if image_id not in wanted:
                continue
            row_plan = plan.classify(stages_map(row["stages"]))
            choice = (int(row_plan.level), shard_index, row_index, row_plan)
            if image_id not in best or choice[:3] < best[image_id][:3]:
                best[image_id] = choice

    chosen: list[dict[int, RowPlan]] = [{} for _ in candidates]
    for _, shard_index, row_index, row_plan in best.values():
        chosen[shard_index][row_index] = row_plan
    writer = ShardWriter(
        root, "annotations", f"part-{run_id}-carried", ANNOTATION_SCHEMA, writer_config, on_shard=on_shard
    )
    for candidate, rows, picks in zip(candidates, keys, chosen, strict=True):
        if not picks:
            continue
        exact = [picks.get(i) is not None and picks[i].level == Level.EXACT for i in range(len(rows))]
        carry.image_ids.update(row["image_id"] for row, kept in zip(rows, exact, strict=True) if kept)
        if candidate.resumed:
            carry.resumed += sum(exact)
        if all(exact) and all(list(row["source_uris"]) == wanted[row["image_id"]] for row in rows):
            carry.shards.append(candidate.shard)
            continue
        table = read_shard(root, candidate.shard)
        if any(exact):
            kept = table.filter(pa.array(exact))
            writer.write(_with_paths(kept, [wanted[i] for i in kept.column("image_id").to_pylist()]))
        stale = [(i, row_plan) for i, row_plan in sorted(picks.items()) if row_plan.level != Level.EXACT]
        stale_rows = table.take([i for i, _ in stale]).to_pylist() if stale else []
        queued: dict[Level, list[dict]] = {Level.REFILTER: [], Level.REANNOTATE: []}
        for (_, row_plan), row in zip(stale, stale_rows, strict=True):
            record = ImageRecord.from_row(row)
            plan.strip(record, row_plan)
            record.source_uris = wanted[record.image_id]
            record.source_uri = record.source_uris[0]
            queued[row_plan.level].append(record.to_row())
            carry.stale_specialists |= row_plan.stale
        for level, rows_to_rerun in queued.items():
            carry.queue(rows_to_rerun, level)
    carry.shards.extend(writer.close())
    return carry


def previous_paths(root: Path, shards: Sequence[ShardInfo]) -> dict[str, list[str]]:
    """image_id -> source paths of every row of a version (for tombstones)."""
    paths: dict[str, list[str]] = {}
    for shard in shards:
        table = read_shard(root, shard, ["image_id", "source_uris"])
        for image_id, uris in zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True):
            paths[image_id] = list(uris or [])
    return paths
