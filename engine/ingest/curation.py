"""Curation of a run's unique images before any model runs: the image gates and near-duplicate groups of
``filters/curation``, on the measures probing stored, deciding which work items go to the specialists.

An image an earlier version annotated is its group's representative before any copy a refresh adds
(even a larger one), so a refresh never annotates a group again. Everything here is a pure function of
the work items (with their measures) and the earlier version's image ids.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from engine.ingest.probe import WorkItem
from filters.curation.selection import NEAR_DUPLICATE, select_for_annotation
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


@dataclass(frozen=True)
class CuratedWork:
    """The work items to annotate, and one :data:`schemas.arrow.SKIPPED_SCHEMA` row per image skipped."""

    work: list[WorkItem]
    skipped: pa.Table

    @property
    def near_duplicates(self) -> int:
        """Images skipped as a copy of another."""
        return int(pc.sum(pc.equal(self.skipped.column("rule"), NEAR_DUPLICATE)).as_py() or 0)

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


def curate(work: list[WorkItem], settings: CurationSettings, annotated_ids: Collection[str] = ()) -> CuratedWork:
    """Which of ``work`` to annotate: gated images and near-duplicates are skipped, the rest kept in order.
    ``annotated_ids``: images an earlier version annotated (preferred as representatives)."""
    if not work:
        return CuratedWork([], SKIPPED_SCHEMA.empty_table())
    selection = select_for_annotation(curation_table(work, annotated_ids), settings)
    kept = set(selection.representatives.column("image_id").to_pylist())
    return CuratedWork([item for item in work if item.image_id in kept], selection.skipped)
