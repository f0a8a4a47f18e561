"""A table kept in partitions where its parts were made: each part's handle (a table in process, a Ray object
ref on Ray, ``engine/partitions/tasks.py``), so the driver holds no row of it until it asks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from engine.partitions.tasks import IN_PROCESS, Tasks


@dataclass(frozen=True)
class Parts:
    """``handles``: the parts in order (of ``tasks``), ``rows`` in all of them, each part of ``schema``."""

    handles: list[Any]
    tasks: Tasks
    rows: int
    schema: pa.Schema

    def each(self) -> Iterator[pa.Table]:
        """The parts' tables, one at a time."""
        for handle in self.handles:
            yield self.tasks.get([handle])[0]

    def gather(self) -> pa.Table:
        """Every part as one table, here."""
        return pa.concat_tables([self.schema.empty_table(), *self.tasks.get(self.handles)])


def in_process(table: pa.Table) -> Parts:
    """``table`` as one part, here."""
    return Parts([table], IN_PROCESS, table.num_rows, table.schema)
