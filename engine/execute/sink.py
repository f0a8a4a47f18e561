"""The end of the stream: annotated rows written as journaled shards by workers, descriptions to the driver.

On Ray the dataset's output blocks go by reference to writer actors (``engine/execute/shard_workers.py``);
the driver collects only their reports: shard descriptions, row counts, and the quarantine rows of
files that failed to load during the run (moved, or changed since probing passed). A small pixel-free
rerun that ran in this process is written here by the same writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from engine.config.settings import WriterConfig
from engine.execute.shard_workers import ShardWorker, WorkerShards, WriteReport
from engine.execute.stage_timing import StageTiming, StageTotals
from engine.partitions.parts import Parts
from engine.progress import Meter
from engine.store.location import Where, location
from engine.store.writer import ShardInfo

LATE = pa.schema([pa.field("source_uri", pa.string()), pa.field("image_id", pa.string())])


@dataclass(frozen=True)
class Annotated:
    """What the annotate phase wrote: its shards, how many new or re-annotated images, the ids of the
    images sent to be written (``engine.partitions.parts.IDS`` in the work table's id partitions; None where
    they were not collected: a first run has no earlier images to compare them with), the quarantine rows of
    files that failed to load during the run, and each stage's timings."""

    shards: list[ShardInfo]
    annotated: int
    sent: Parts | None
    late_quarantine: list[dict[str, Any]]
    timings: list[StageTiming] = field(default_factory=list)

    def late_table(self) -> pa.Table:
        """The path and id of each file that failed to load while annotated."""
        rows = [{"source_uri": row["source_uri"], "image_id": row["image_id"]} for row in self.late_quarantine]
        return pa.Table.from_pylist(rows, schema=LATE)


class AnnotationSink:
    """Collects the writers' reports (``reports``: the only things that reach the driver) for one run; shows
    each step's progress (a bar with ``bars``, else lines through ``progress``) and sums the stages' timings
    (``stages``: their names in the order of the table printed at the end)."""

    def __init__(
        self,
        root: Where,
        run_id: str,
        config: WriterConfig,
        progress: Callable[[str], None],
        bars: bool = False,
        stages: Sequence[str] = (),
    ) -> None:
        self.root, self.run_id, self.config, self.progress = str(location(root)), run_id, config, progress
        self.bars = bars
        self.reports: list[WriteReport] = []
        self.totals = StageTotals(stages)
        self._workers: WorkerShards | None = None
        self._local: ShardWorker | None = None
        self._done = 0
        self._meter: Meter | None = None

    def start_writers(self) -> None:
        """Start the writer actors now (Ray must be up), so that they are ready when the first rows are."""
        if self._workers is None:
            self._workers = WorkerShards(self.root, self.run_id, self.config, self._take)

    def drain_dataset(self, dataset: Any, label: str, total: int) -> int:
        """Write every row of a Ray dataset from writer actors; return the rows written."""
        self.start_writers()
        return self._drain(label, total, lambda: self._workers.drain(dataset))  # type: ignore[union-attr]

    def drain_refs(self, refs: Iterable[tuple[Any, tuple[int, int] | None]], label: str, total: int) -> int:
        """Write every block of ``refs`` (block references, as ``shard_workers.block_refs`` yields them) from
        writer actors; return the rows written."""
        self.start_writers()
        return self._drain(label, total, lambda: self._workers.drain_refs(refs))  # type: ignore[union-attr]

    def drain_local(self, batches: Iterable[pa.Table], label: str, total: int) -> int:
        """Write batches computed in this process (small pixel-free reruns); return the rows written."""
        if self._local is None:
            self._local = ShardWorker(self.root, f"part-{self.run_id}", self.run_id, self.config)

        def write_all() -> None:
            for batch in batches:
                self._take(self._local.write(batch))  # type: ignore[union-attr]

        return self._drain(label, total, write_all)

    def close(self, annotated: int, sent: Parts | None) -> Annotated:
        """Close the writers; ``sent``: the id of every image sent to be written (None: not collected)."""
        if self._workers is not None:
            self._workers.close()
        if self._local is not None:
            self._take(self._local.close())
        late = [row for report in self.reports for row in report.late_quarantine]
        shards = [shard for report in self.reports for shard in report.shards]
        return Annotated(shards, annotated, sent, late, self.totals.timings())

    def _drain(self, label: str, total: int, write: Callable[[], None]) -> int:
        self._done = 0
        self._meter = Meter(label, total, self.progress, self.bars)
        try:
            write()
        except BaseException:
            self._meter.abort()
            raise
        finally:
            meter, self._meter = self._meter, None
        meter.close()
        return self._done

    def _take(self, report: WriteReport) -> None:
        self.reports.append(report)
        self.totals.merge(report.timings)
        self._done += report.rows
        if self._meter is not None and report.received:
            self._meter.advance(report.received)
