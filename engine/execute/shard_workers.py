"""Annotation shards written where the rows are.

A :class:`ShardWorker` buffers the annotated blocks it is given, writes and journals shards through the
store (``engine/store``: a local folder or an object-store prefix alike) and reports back only what it
wrote: shard descriptions (path, rows, size, SHA-256, counts), how many rows, and the source and reason
of each row whose file failed to load during the run (those go to quarantine, not to the annotations).
On Ray it runs as an actor fed with block references (:class:`WorkerShards`), so no row and no image
byte reaches the driver; for a small in-process rerun the same class runs in the driver.

A shard closes at ``writer.rows_per_shard`` rows or once its first row has waited
``writer.max_shard_seconds`` (a timer thread closes it even while no block arrives), so a ``kill -9``
loses at most that much work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from engine.config.settings import WriterConfig
from engine.execute.stage_timing import StageTiming, StageTotals, split_timings
from engine.ingest.image_bytes import INGEST_STAGE
from engine.store.journal import RunJournal
from engine.store.writer import ShardInfo, ShardWriter
from schemas.arrow import ANNOTATION_SCHEMA

# Blocks handed to each writer and not yet written: enough to keep it busy, few enough to bound memory.
IN_FLIGHT_PER_WORKER = 2
CPUS_PER_WORKER = 8


@dataclass(frozen=True)
class WriteReport:
    """What a writer did since its last report: shards closed, rows taken (``received``: with those that
    failed ingestion), rows that failed ingestion, and the stages' timings over the rows received."""

    shards: list[ShardInfo] = field(default_factory=list)
    rows: int = 0
    late_quarantine: list[dict[str, Any]] = field(default_factory=list)
    timings: list[StageTiming] = field(default_factory=list)
    received: int = 0


def _ingest_failure(errors: list[dict[str, Any]] | None) -> str | None:
    for error in errors or []:
        if error["stage"] == INGEST_STAGE:
            return error["message"]
    return None


def split_ingest_failures(batch: pa.Table) -> tuple[pa.Table, list[dict[str, Any]]]:
    """The rows to write, and a quarantine row for each row whose file failed to load during the run."""
    failures = [_ingest_failure(errors) for errors in batch.column("errors").to_pylist()]
    bad = [i for i, failure in enumerate(failures) if failure]
    if not bad:
        return batch, []
    identity = batch.select(["source_uri", "image_id"]).take(bad).to_pylist()
    late = []
    for row, i in zip(identity, bad, strict=True):
        reason, _, detail = failures[i].partition(": ")  # type: ignore[union-attr]
        late.append({**row, "reason": reason, "detail": detail, "size_bytes": None})
    return batch.filter(pa.array([not f for f in failures])), late


def _as_arrow(block: Any) -> pa.Table:
    if isinstance(block, pa.Table):
        return block
    from ray.data.block import BlockAccessor

    return BlockAccessor.for_block(block).to_arrow()


def _current_node() -> str | None:
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


class ShardWorker:
    """Writes annotation shards ``annotations/<prefix>-NNNNN.parquet`` of run ``run_id`` under ``root``."""

    def __init__(self, root: str, prefix: str, run_id: str, config: WriterConfig) -> None:
        journal = RunJournal(root, run_id, node=_current_node())
        self._writer = ShardWriter(root, "annotations", prefix, ANNOTATION_SCHEMA, config, journal.record)
        self._lock = threading.Lock()
        self._reported = 0
        self._stop = threading.Event()
        self._timer = threading.Thread(
            target=self._close_due_shards, args=(min(1.0, max(0.05, config.max_shard_seconds / 4)),), daemon=True
        )
        self._timer.start()

    def write(self, block: Any, rows: tuple[int, int] | None = None) -> WriteReport:
        """Buffer one block of annotated rows (only ``rows``, start and end, when given), closing shards as
        they fill; report what was written."""
        table = _as_arrow(block)
        if rows is not None:
            table = table.slice(rows[0], rows[1] - rows[0])
        table, timing_column = split_timings(table)
        totals = StageTotals()
        totals.add(timing_column, table.column("errors"))
        kept, late = split_ingest_failures(table)
        with self._lock:
            if "image_bytes" in kept.column_names:
                kept = kept.drop_columns(["image_bytes"])
            self._writer.write(kept)
            return self._report(kept.num_rows, late, totals.timings(), table.num_rows)

    def close(self) -> WriteReport:
        """Write the last shard and stop the timer."""
        self._stop.set()
        with self._lock:
            self._writer.close()
            return self._report(0, [])

    def _report(
        self, rows: int, late: list[dict[str, Any]], timings: list[StageTiming] | None = None, received: int = 0
    ) -> WriteReport:
        shards = self._writer.shards[self._reported :]
        self._reported = len(self._writer.shards)
        return WriteReport(list(shards), rows, late, timings or [], received)

    def _close_due_shards(self, every: float) -> None:
        while not self._stop.wait(every):
            with self._lock:
                self._writer.flush_due()


def worker_count(config: WriterConfig, cluster_cpus: float) -> int:
    """``writer.workers``, or one writer per ``CPUS_PER_WORKER`` CPUs of the cluster (at least one)."""
    return config.workers or max(1, int(cluster_cpus) // CPUS_PER_WORKER)


def block_refs(dataset: Any) -> Iterator[tuple[Any, tuple[int, int] | None]]:
    """The output blocks of a Ray dataset as they are ready: each block's reference and, when only part of
    it belongs to the output, that part's rows (start, end)."""
    for bundle in dataset.iter_internal_ref_bundles():
        for entry, part in zip(bundle.blocks, bundle.slices, strict=True):
            yield entry.ref, None if part is None else (part.start_offset, part.end_offset)


class WorkerShards:
    """The driver's side of writing on Ray: writer actors spread over the cluster, fed block references
    round robin (a bounded number in flight), their reports passed to ``on_report``."""

    def __init__(self, root: str, run_id: str, config: WriterConfig, on_report: Callable[[WriteReport], None]) -> None:
        import ray

        count = worker_count(config, ray.cluster_resources().get("CPU", 1.0))
        # No CPU reserved: a writer mostly waits for blocks and storage, and the stages' pools keep theirs.
        remote = ray.remote(ShardWorker).options(num_cpus=0, scheduling_strategy="SPREAD")
        self._actors = [remote.remote(root, f"part-{run_id}-w{k}", run_id, config) for k in range(count)]
        self._on_report = on_report
        self._in_flight: list[Any] = []
        self._turn = 0

    def drain(self, dataset: Any) -> None:
        """Hand every output block of ``dataset`` to a writer (by reference: the driver never fetches it);
        return once each is written or buffered in a writer."""
        self.drain_refs(block_refs(dataset))

    def drain_refs(self, refs: Iterable[tuple[Any, tuple[int, int] | None]]) -> None:
        """As :meth:`drain`, for block references and their parts as :func:`block_refs` yields them."""
        import ray

        for block_ref, rows in refs:
            actor = self._actors[self._turn % len(self._actors)]
            self._turn += 1
            self._in_flight.append(actor.write.remote(block_ref, rows))
            while len(self._in_flight) >= IN_FLIGHT_PER_WORKER * len(self._actors):
                done, self._in_flight = ray.wait(self._in_flight, num_returns=1)
                self._on_report(ray.get(done[0]))
        for report in ray.get(self._in_flight):
            self._on_report(report)
        self._in_flight = []

    def close(self) -> None:
        """Close every writer's last shard, then end the actors."""
        import ray

        try:
            for report in ray.get([actor.close.remote() for actor in self._actors]):
                self._on_report(report)
        finally:
            for actor in self._actors:
                ray.kill(actor)
