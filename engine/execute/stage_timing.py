"""Per-stage timings carried through the stream: how many images each stage processed, its busy seconds,
its model's load seconds, and (counted at the sink) its errors.

Workers measure each stage where it runs and attach the measures to the rows of their output batch, in
one extra column (:data:`TIMINGS_COLUMN`): each processed row carries its share of the stage's batch time,
so the totals stay right however Ray Data splits or joins blocks on the way. The sink sums the column
and drops it before writing: shards never hold it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import pyarrow as pa

TIMINGS_COLUMN = "_stage_timings"
TIMING_TYPE = pa.list_(
    pa.struct(
        [
            ("stage", pa.string()),
            ("images", pa.int32()),
            ("seconds", pa.float64()),
            ("load_seconds", pa.float64()),
        ]
    )
)


@dataclass
class StageTiming:
    """One stage over a whole run. ``seconds`` is busy time summed over its workers (not wall time);
    ``load_seconds`` the time its workers spent setting it up (loading models)."""

    stage: str
    images: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0
    errors: int = 0

    @property
    def images_per_second(self) -> float | None:
        return self.images / self.seconds if self.seconds > 0 else None

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "seconds": round(self.seconds, 3), "load_seconds": round(self.load_seconds, 3)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> StageTiming:
        return cls(
            str(data["stage"]),
            int(data.get("images", 0)),  # type: ignore[arg-type]
            float(data.get("seconds", 0.0)),  # type: ignore[arg-type]
            float(data.get("load_seconds", 0.0)),  # type: ignore[arg-type]
            int(data.get("errors", 0)),  # type: ignore[arg-type]
        )


class BatchTimer:
    """What one worker measured over one batch: per stage, the rows it processed and its seconds."""

    def __init__(self) -> None:
        self.rows: dict[str, list[int]] = {}
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, rows: Iterable[int], seconds: float) -> None:
        self.rows.setdefault(stage, []).extend(rows)
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def column(self, num_rows: int, loads: dict[str, float], earlier: pa.ChunkedArray | None) -> pa.Array:
        """Each row's entries: those it carried in (``earlier``), a share of each stage's seconds, and on the
        first row the setup time of stages set up since the last batch (``loads``)."""
        entries: list[list[dict[str, object]]] = (
            [list(cell or []) for cell in earlier.to_pylist()] if earlier is not None else [[] for _ in range(num_rows)]
        )
        for stage, rows in self.rows.items():
            unique = sorted(set(rows))
            share = self.seconds[stage] / len(unique) if unique else 0.0
            for i in unique:
                entries[i].append({"stage": stage, "images": 1, "seconds": share, "load_seconds": 0.0})
        if num_rows:
            for stage, seconds in loads.items():
                entries[0].append({"stage": stage, "images": 0, "seconds": 0.0, "load_seconds": seconds})
        return pa.array(entries, type=TIMING_TYPE)


def split_timings(table: pa.Table) -> tuple[pa.Table, pa.ChunkedArray | None]:
    """The table without its timings column, and that column (None when it has none)."""
    if TIMINGS_COLUMN not in table.column_names:
        return table, None
    return table.drop_columns([TIMINGS_COLUMN]), table.column(TIMINGS_COLUMN)


def with_timings(table: pa.Table, column: pa.Array) -> pa.Table:
    return table.append_column(pa.field(TIMINGS_COLUMN, TIMING_TYPE), column)


class StageTotals:
    """The sink's running totals per stage, in the order stages first appear (or are named up front)."""

    def __init__(self, stages: Iterable[str] = ()) -> None:
        self.by_stage: dict[str, StageTiming] = {name: StageTiming(name) for name in stages}

    def _get(self, stage: str) -> StageTiming:
        if stage not in self.by_stage:
            self.by_stage[stage] = StageTiming(stage)
        return self.by_stage[stage]

    def add(self, timings: pa.ChunkedArray | None, errors: pa.ChunkedArray) -> None:
        """Add one output batch: its rows' timing entries, and the errors each row got from a stage that
        processed it in this run (errors carried over from an earlier run are not counted again)."""
        cells = timings.to_pylist() if timings is not None else [None] * len(errors)
        for entries, row_errors in zip(cells, errors.to_pylist(), strict=True):
            ran = set()
            for entry in entries or []:
                timing = self._get(entry["stage"])
                timing.images += entry["images"]
                timing.seconds += entry["seconds"]
                timing.load_seconds += entry["load_seconds"]
                if entry["images"]:
                    ran.add(entry["stage"])
            for error in row_errors or []:
                if error["stage"] in ran:
                    self.by_stage[error["stage"]].errors += 1

    def merge(self, timings: Iterable[StageTiming]) -> None:
        """Add another writer's totals."""
        for other in timings:
            timing = self._get(other.stage)
            timing.images += other.images
            timing.seconds += other.seconds
            timing.load_seconds += other.load_seconds
            timing.errors += other.errors

    def timings(self) -> list[StageTiming]:
        return [t for t in self.by_stage.values() if t.images or t.load_seconds or t.errors]
