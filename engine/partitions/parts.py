"""A table kept in partitions where its parts were made: each part's handle (a table in process, a Ray object
ref on Ray, ``engine/partitions/tasks.py``), so the driver holds no row of it until it asks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from engine.partitions.tasks import IN_PROCESS, Tasks

IDS = pa.schema([pa.field("image_id", pa.string())])  # a part of image ids (carried, or sent to be written)


@dataclass(frozen=True)
class Parts:
    """``handles``: the parts in order (of ``tasks``), ``counts``: each part's rows, each part of ``schema``."""

    handles: list[Any]
    tasks: Tasks
    counts: tuple[int, ...]
    schema: pa.Schema

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts", tuple(int(count) for count in self.counts))
        if len(self.counts) != len(self.handles):
            raise ValueError(f"{len(self.handles)} parts but {len(self.counts)} row counts")

    @property
    def rows(self) -> int:
        """The rows in all parts."""
        return sum(self.counts)

    def each(self) -> Iterator[pa.Table]:
        """The parts' tables, one at a time."""
        for handle in self.handles:
            yield self.tasks.get([handle])[0]

    def gather(self) -> pa.Table:
        """Every part as one table, here."""
        return pa.concat_tables([self.schema.empty_table(), *self.tasks.get(self.handles)])

    def column(self, name: str) -> list[Any]:
        """Each part's ``name`` column as one array, taken where the part is (handles, in part order)."""
        return [self.tasks.submit(column_of, handle, name)[0] for handle in self.handles]


def column_of(table: pa.Table, name: str) -> pa.Array:
    """``table``'s column ``name`` as one array."""
    column = table.column(name)
    return column.combine_chunks() if column.num_chunks else pa.array([], column.type)


def in_process(table: pa.Table) -> Parts:
    """``table`` as one part, here."""
    return Parts([table], IN_PROCESS, (table.num_rows,), table.schema)


def empty_parts(schema: pa.Schema, count: int) -> Parts:
    """``count`` empty parts of ``schema``, here (partitions with nothing in them)."""
    return Parts([schema.empty_table()] * count, IN_PROCESS, [0] * count, schema)


def task_results(pieces: list[pa.Table]) -> pa.Table | tuple[pa.Table, ...]:
    """A task's tables as its results: the table itself for one (``Tasks.submit`` with ``returns=1``), else a tuple."""
    return pieces[0] if len(pieces) == 1 else tuple(pieces)


def joined_parts(tasks: Tasks, pieces: list[list[Any]], schema: pa.Schema, count: int) -> Parts:
    """An exchange's last step: partition ``k`` of ``count`` joins the ``k``-th handle of each of ``pieces`` (each
    the handles of a task that cut its rows into ``count`` partitions), a task per partition."""
    parts = [tasks.submit(joined, schema, *[p[k] for p in pieces], returns=2) for k in range(count)]
    return counted_parts(tasks, parts, schema)


def counted_parts(tasks: Tasks, results: Sequence[Sequence[Any]], schema: pa.Schema) -> Parts:
    """The parts made by tasks that each returned a table of ``schema`` and its rows (``results``: each task's two
    handles, in part order): the tables left where they are, only the row counts fetched."""
    return Parts([table for table, _ in results], tasks, tasks.get([rows for _, rows in results]), schema)


def joined(schema: pa.Schema, *pieces: pa.Table) -> tuple[pa.Table, int]:
    """One partition's pieces (of ``schema``) as one table, and its rows: a task of an exchange's last step."""
    table = pa.concat_tables([schema.empty_table(), *pieces]).combine_chunks()
    return table, table.num_rows
