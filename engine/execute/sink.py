"""The end of the stream: annotated batches written as journaled shards, ingest failures set aside.

A file can fail to load during the run although probing passed (moved, or changed since): its row
carries an ingest error, and it goes to quarantine instead of the annotations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from engine.ingest.image_bytes import INGEST_STAGE
from engine.store.writer import ShardInfo, ShardWriter


@dataclass(frozen=True)
class Annotated:
    """What the annotate phase wrote: its shards, how many new or re-annotated images, every image id
    written, and the quarantine rows of files that failed to load during the run."""

    shards: list[ShardInfo]
    annotated: int
    written: set[str]
    late_quarantine: list[dict[str, Any]]


def _ingest_failure(row: dict[str, Any]) -> str | None:
    for error in row["errors"] or []:
        if error["stage"] == INGEST_STAGE:
            return error["message"]
    return None


class AnnotationSink:
    """Writes annotated batches as shards; rows that failed ingestion go to quarantine."""

    def __init__(self, writer: ShardWriter, progress: Callable[[str], None]) -> None:
        self.writer, self.progress = writer, progress
        self.late_quarantine: list[dict[str, Any]] = []
        self.written: set[str] = set()

    def drain(self, batches: Iterable[pa.Table], label: str, total: int) -> int:
        """Write every batch; return the rows written (those that failed ingestion left out)."""
        done = 0
        for batch in batches:
            failures = [_ingest_failure(row) for row in batch.select(["errors"]).to_pylist()]
            bad = [i for i, failure in enumerate(failures) if failure]
            for i in bad:
                row = batch.slice(i, 1).select(["source_uri", "image_id"]).to_pylist()[0]
                reason, _, detail = failures[i].partition(": ")  # type: ignore[union-attr]
                self.late_quarantine.append({**row, "reason": reason, "detail": detail, "size_bytes": None})
            if bad:
                batch = batch.filter(pa.array([not f for f in failures]))
            self.writer.write(batch.drop_columns(["image_bytes"]))
            self.written.update(batch.column("image_id").to_pylist())
            done += batch.num_rows
            self.progress(f"{label} {done}/{total} images")
        return done

    def close(self, annotated: int) -> Annotated:
        return Annotated(self.writer.close(), annotated, self.written, self.late_quarantine)
