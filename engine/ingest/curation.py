"""Curation of a run's unique images before any model runs: the image gates and near-duplicate groups of
``filters/curation``, on the measures probing stored, deciding which work items go to the specialists.

An image an earlier version annotated is its group's representative before any copy a refresh adds
(even a larger one), so a refresh never annotates a group again. Everything here is a pure function of
the work items (with their measures) and the earlier version's image ids.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.ingest.probe import WorkItem
from engine.store.location import Where
from engine.store.reader import read_shard, shard_schema
from engine.store.writer import ShardInfo
from filters.curation.selection import NEAR_DUPLICATE, select_for_annotation
from filters.curation.semantic import semantic_copies
from filters.curation.settings import CurationSettings, SemanticSettings
from schemas.arrow import IMAGE_MEASURES, SKIPPED_SCHEMA
from schemas.records import ImageMeasures

SEMANTIC_DUPLICATE = "semantic_duplicate"
CURATION_INPUT = pa.schema(
    [
        ("source_uri", pa.string()),
        ("image_id", pa.string()),
        ("source_uris", pa.list_(pa.string())),
        ("measures", IMAGE_MEASURES),
        ("annotated", pa.bool_()),
    ]
)


@dataclass(frozen=True)
class CuratedWork:
    """The work items to annotate, and one :data:`schemas.arrow.SKIPPED_SCHEMA` row per image skipped."""

    work: list[WorkItem]
    skipped: pa.Table

    @property
    def near_duplicates(self) -> int:
        """Images skipped as a copy of another (by hashes or by embeddings)."""
        copies = pc.is_in(self.skipped.column("rule"), pa.array([NEAR_DUPLICATE, SEMANTIC_DUPLICATE]))
        return int(pc.sum(copies).as_py() or 0)

    @property
    def groups(self) -> int:
        """Near-duplicate groups: representatives that stand for at least one skipped copy."""
        return len(set(self.skipped.column("duplicate_of").drop_null().to_pylist()))

    @property
    def gated(self) -> int:
        """Images skipped by an image gate."""
        return self.skipped.num_rows - self.near_duplicates


def curation_table(work: list[WorkItem], annotated_ids: Collection[str]) -> pa.Table:
    """The input of :func:`filters.curation.selection.select_for_annotation`: one row per work item."""
    rows = [
        {
            "source_uri": item.source_uri,
            "image_id": item.image_id,
            "source_uris": list(item.source_uris),
            "measures": None if item.measures is None else item.measures.to_dict(),
            "annotated": item.image_id in annotated_ids,
        }
        for item in work
    ]
    return pa.Table.from_pylist(rows, schema=CURATION_INPUT)


def curate(
    work: list[WorkItem],
    settings: CurationSettings,
    annotated_ids: Collection[str] = (),
    references: Sequence[WorkItem] = (),
) -> CuratedWork:
    """Which of ``work`` to annotate: gated images and near-duplicates are skipped, the rest kept in order.
    ``annotated_ids``: images an earlier version annotated (preferred as representatives). ``references``:
    annotated images this run does not judge (kept as they are) that a new image may be a copy of."""
    if not work:
        return CuratedWork([], SKIPPED_SCHEMA.empty_table())
    in_work = {item.image_id for item in work}
    references = [item for item in references if item.image_id not in in_work]
    annotated = set(annotated_ids) | {item.image_id for item in references}
    selection = select_for_annotation(curation_table([*work, *references], annotated), settings)
    kept = set(selection.representatives.column("image_id").to_pylist())
    skipped = selection.skipped
    if references:
        reference_ids = pa.array([item.image_id for item in references], pa.string())
        skipped = skipped.filter(pc.invert(pc.is_in(skipped.column("image_id"), value_set=reference_ids)))
    return CuratedWork([item for item in work if item.image_id in kept], skipped)


REFERENCE_COLUMNS = ["image_id", "source_uri", "source_uris", "width", "height", "format", "measures"]


def kept_references(root: Where, shards: Sequence[ShardInfo], kept: Collection[str]) -> list[WorkItem]:
    """The images ``kept`` (ids) of a version's ``shards`` with the measures their rows hold, as work items
    for :func:`curate`'s ``references`` (rows of shards written before measures were kept are left out)."""
    wanted = pa.array(sorted(kept), pa.string())
    items = []
    for shard in shards:
        if "measures" not in shard_schema(root, shard).names:
            continue
        table = read_shard(root, shard, REFERENCE_COLUMNS)
        table = table.filter(
            pc.and_(pc.is_in(table.column("image_id"), value_set=wanted), pc.is_valid(table.column("measures")))
        )
        for row in table.to_pylist():
            items.append(
                WorkItem(
                    row["image_id"],
                    row["source_uri"],
                    tuple(row["source_uris"] or [row["source_uri"]]),
                    row["width"],
                    row["height"],
                    row["format"] or "",
                    measures=ImageMeasures.from_dict(row["measures"]),
                )
            )
    return items


# (work items) -> (positions of those embedded, their embeddings (N, D)); an item left out is annotated.
Embed = Callable[[Sequence[WorkItem]], tuple[np.ndarray, np.ndarray]]


def skip_semantic_copies(
    curated: CuratedWork, settings: SemanticSettings, embed: Embed, annotated_ids: Collection[str] = ()
) -> CuratedWork:
    """``curated`` with the semantic near-duplicates among its work skipped too (rule ``semantic_duplicate``,
    value: the cosine to the representative, threshold: ``min_cosine``)."""
    positions, embeddings = embed(curated.work)
    if positions.size < 2:
        return curated
    items = [curated.work[p] for p in positions]
    copies = semantic_copies(
        embeddings,
        np.array([item.width * item.height for item in items], dtype=np.int64),
        np.array([item.source_uri for item in items]),
        np.array([item.image_id for item in items]),
        settings.min_cosine,
        preferred=np.array([item.image_id in annotated_ids for item in items], dtype=bool),
        recall=settings.recall,
        seed=settings.seed,
    )
    if not copies:
        return curated
    rows = []
    for found in copies:
        copy, representative = items[found.copy], items[found.representative]
        rows.append(
            {
                "source_uri": copy.source_uri,
                "image_id": copy.image_id,
                "source_uris": list(copy.source_uris),
                "rule": SEMANTIC_DUPLICATE,
                "value": found.cosine,
                "threshold": settings.min_cosine,
                "detail": f"cosine {found.cosine:.4f} (min {settings.min_cosine}) to {representative.source_uri}",
                "duplicate_of": representative.image_id,
                "measures": None if copy.measures is None else copy.measures.to_dict(),
            }
        )
    skipped_ids = {row["image_id"] for row in rows}
    skipped = pa.concat_tables([curated.skipped, pa.Table.from_pylist(rows, schema=SKIPPED_SCHEMA)])
    skipped = skipped.sort_by("source_uri")
    return CuratedWork([item for item in curated.work if item.image_id not in skipped_ids], skipped)


def carried_skips(
    previous: pa.Table, seen_paths: Collection[str], seen_ids: Collection[str], vouches_gone: Callable[[str], bool]
) -> pa.Table:
    """The rows of the previous version's skipped table (``previous``) that this run did not look at, carried
    as they are (as images it did not look at are kept): none of a row's paths was probed, its image is not
    among this run's, and not every path is vouched gone (``engine/refresh/scope.py``)."""
    seen_paths, seen_ids = set(seen_paths), set(seen_ids)
    keep = []
    for position, row in enumerate(previous.select(["image_id", "source_uri", "source_uris"]).to_pylist()):
        uris = row["source_uris"] or [row["source_uri"]]
        if row["image_id"] in seen_ids or any(uri in seen_paths for uri in uris):
            continue
        if not all(vouches_gone(uri) for uri in uris):
            keep.append(position)
    return previous.take(pa.array(keep, pa.int64()))


def with_carried_skips(curated: CuratedWork, carried: pa.Table) -> CuratedWork:
    """``curated`` with ``carried`` rows added to its skipped table (sorted by ``source_uri``)."""
    if not carried.num_rows:
        return curated
    skipped = pa.concat_tables([curated.skipped, carried.cast(SKIPPED_SCHEMA)]).sort_by("source_uri")
    return CuratedWork(curated.work, skipped)
