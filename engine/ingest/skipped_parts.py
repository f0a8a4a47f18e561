"""Curation's skipped table kept in the work table's image-id partitions, counted where its parts are.

Each partition's skipped rows (:data:`schemas.arrow.SKIPPED_SCHEMA`: gated images, near-duplicates, rows carried
from the previous version) are joined by a task of their own and written from there
(``engine.store.side_tables.write_skipped``); the driver gets their :class:`SkipTally` only: rows by rule, and the
near-duplicate groups (distinct representatives, counted by an exchange keyed by the representative's id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from engine.partitions.keys import split_by_id
from engine.partitions.parts import IDS, Parts, counted_parts
from engine.partitions.tasks import Tasks
from engine.store.counts import value_counts
from filters.curation.selection import NEAR_DUPLICATE
from schemas.arrow import SKIPPED_SCHEMA

SEMANTIC_DUPLICATE = "semantic_duplicate"
COPY_RULES = (NEAR_DUPLICATE, SEMANTIC_DUPLICATE)


@dataclass(frozen=True)
class SkipTally:
    """What a skipped table holds: its rows by ``rules``, and its near-duplicate ``groups`` (representatives that
    stand for at least one skipped copy)."""

    rules: dict[str, int]
    groups: int

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


def joined_skips(*pieces: pa.Table) -> tuple[pa.Table, int]:
    """One partition's skipped rows from its ``pieces``, sorted by ``source_uri``, and how many (a task)."""
    table = pa.concat_tables([SKIPPED_SCHEMA.empty_table(), *(p.cast(SKIPPED_SCHEMA) for p in pieces)])
    return table.sort_by("source_uri"), table.num_rows


def skips_in_parts(tasks: Tasks, pieces: Sequence[Sequence[Any]]) -> Parts:
    """Partition ``k`` of the skipped table joins the ``k``-th handle of each of ``pieces`` (each a handle per
    partition), a task per partition."""
    joined = [tasks.submit(joined_skips, *part, returns=2) for part in zip(*pieces, strict=True)]
    return counted_parts(tasks, joined, SKIPPED_SCHEMA)


def tally_skips(skipped: Parts) -> SkipTally:
    """The :class:`SkipTally` of a skipped table in id partitions: each part counts its rules and cuts its
    representatives by their id partition, each id partition counts the distinct representatives it receives."""
    tasks, count = skipped.tasks, len(skipped.handles)
    counted = [tasks.submit(rules_and_representatives, part, count, returns=1 + count) for part in skipped.handles]
    groups = [tasks.submit(distinct_ids, *[found[1 + k] for found in counted])[0] for k in range(count)]
    rules: dict[str, int] = {}
    for part_rules in tasks.get([found[0] for found in counted]):
        for rule, rows in part_rules.items():
            rules[rule] = rules.get(rule, 0) + rows
    return SkipTally(rules, sum(tasks.get(groups)))


def rules_and_representatives(skipped: pa.Table, count: int) -> tuple[dict[str, int] | pa.Table, ...]:
    """One part's rows by rule, then the distinct ids its copies stand for (:data:`IDS`) cut into ``count`` id
    partitions."""
    representatives = pc.unique(skipped.column("duplicate_of").combine_chunks().drop_null())
    by_id = split_by_id(pa.Table.from_arrays([representatives], schema=IDS), count)
    return (value_counts(skipped.column("rule")), *by_id)


def distinct_ids(*pieces: pa.Table) -> int:
    """How many distinct ids ``pieces`` (:data:`IDS`) hold together."""
    ids = pa.concat_tables([IDS.empty_table(), *pieces]).column("image_id")
    return int(pc.count_distinct(ids).as_py())
