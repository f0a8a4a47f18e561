"""Curation's skipped table kept in the work table's image-id partitions, counted where its parts are.

Each partition's skipped rows (:data:`schemas.arrow.SKIPPED_SCHEMA`: gated images, near-duplicates, rows carried
from the previous version) are joined by a task of their own and written from there
(``engine.store.side_tables.write_skipped``); the driver holds their :class:`SkipTally` only: rows by rule and
the near-duplicate groups' representatives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from engine.partitions.parts import Parts
from engine.partitions.tasks import Tasks
from engine.store.counts import value_counts
from filters.curation.selection import NEAR_DUPLICATE
from schemas.arrow import SKIPPED_SCHEMA

SEMANTIC_DUPLICATE = "semantic_duplicate"
COPY_RULES = (NEAR_DUPLICATE, SEMANTIC_DUPLICATE)


@dataclass(frozen=True)
class SkipTally:
    """What skipped rows hold: their count by ``rules``, and the distinct ids they are copies of
    (``representatives``: one per near-duplicate group)."""

    rules: dict[str, int]
    representatives: pa.Array

    @property
    def rows(self) -> int:
        return sum(self.rules.values())

    @property
    def near_duplicates(self) -> int:
        """Images skipped as a copy of another (by hashes or by embeddings)."""
        return sum(self.rules.get(rule, 0) for rule in COPY_RULES)

    @property
    def gated(self) -> int:
        """Images skipped by an image gate."""
        return self.rows - self.near_duplicates

    @property
    def groups(self) -> int:
        """Near-duplicate groups: representatives that stand for at least one skipped copy."""
        return len(self.representatives)


def tally_skips(skipped: pa.Table) -> SkipTally:
    """The :class:`SkipTally` of one table of skipped rows."""
    representatives = pc.unique(skipped.column("duplicate_of").combine_chunks().drop_null())
    return SkipTally(value_counts(skipped.column("rule")), representatives)


def combined_tally(tallies: Sequence[SkipTally]) -> SkipTally:
    """The tally of several tables' rows (each image skipped in one of them)."""
    rules: dict[str, int] = {}
    for tally in tallies:
        for rule, count in tally.rules.items():
            rules[rule] = rules.get(rule, 0) + count
    representatives = pa.concat_arrays([pa.array([], pa.string()), *(t.representatives for t in tallies)])
    return SkipTally(rules, pc.unique(representatives))


NO_SKIPS = SkipTally({}, pa.array([], pa.string()))


def joined_skips(*pieces: pa.Table) -> tuple[pa.Table, SkipTally]:
    """One partition's skipped rows from its ``pieces``, sorted by ``source_uri``, and their tally (a task)."""
    table = pa.concat_tables([SKIPPED_SCHEMA.empty_table(), *(p.cast(SKIPPED_SCHEMA) for p in pieces)])
    table = table.sort_by("source_uri")
    return table, tally_skips(table)


def skips_in_parts(tasks: Tasks, pieces: Sequence[Sequence[Any]]) -> tuple[Parts, SkipTally]:
    """Partition ``k`` of the skipped table joins the ``k``-th handle of each of ``pieces`` (each a handle per
    partition), a task per partition; with the whole table's tally."""
    joined = [tasks.submit(joined_skips, *part, returns=2) for part in zip(*pieces, strict=True)]
    tallies = tasks.get([tally for _, tally in joined])
    parts = Parts([table for table, _ in joined], tasks, [t.rows for t in tallies], SKIPPED_SCHEMA)
    return parts, combined_tally(tallies)
