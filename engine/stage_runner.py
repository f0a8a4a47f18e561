"""Running one stage over an Arrow batch, isolating failures to the images that caused them.

``run_stage_on_table`` is a pure function (no Ray); ``StageWorker`` is the callable class Ray
Data holds in an actor pool, so the stage's model loads once per actor.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import numpy as np
import pyarrow as pa

from engine.ingest import BadImage, decode_image
from schemas.arrow import IN_FLIGHT_SCHEMA
from schemas.records import ImageRecord, StageError
from schemas.stage import Stage

MAX_ERROR_CHARS = 2000


def _error_message(error: BaseException) -> str:
    trace = "".join(traceback.format_exception_only(type(error), error)).strip()
    return trace[:MAX_ERROR_CHARS]


def _decode(rows: list[dict[str, Any]], max_pixels: int) -> tuple[list[np.ndarray | None], list[str | None]]:
    images: list[np.ndarray | None] = []
    failures: list[str | None] = []
    for row in rows:
        try:
            images.append(decode_image(row["image_bytes"], max_pixels)[0])
            failures.append(None)
        except BadImage as error:
            images.append(None)
            failures.append(str(error))
    return images, failures


def run_stage_on_table(stage: Stage, table: pa.Table, max_pixels: int) -> pa.Table:
    """Apply ``stage`` to every row of ``table`` (in-flight schema); return the updated table.

    The stage first runs on the whole batch. If it raises, each image runs alone, so one bad image
    costs only its own annotations from this stage: it gets a :class:`StageError` and the run goes on.
    Every row records the stage's fingerprint in ``stages``.
    """
    rows = table.to_pylist()
    images, failures = _decode(rows, max_pixels) if stage.needs_pixels else ([None] * len(rows), [None] * len(rows))
    records = [ImageRecord.from_row(row) for row in rows]
    ready = [i for i, failure in enumerate(failures) if failure is None]
    try:
        stage.process([records[i] for i in ready], [images[i] for i in ready] if stage.needs_pixels else None)
    except Exception:
        records = [ImageRecord.from_row(row) for row in rows]
        for i in ready:
            try:
                stage.process([records[i]], [images[i]] if stage.needs_pixels else None)  # type: ignore[list-item]
            except Exception as error:
                records[i] = ImageRecord.from_row(rows[i])
                records[i].errors.append(StageError(stage.name, _error_message(error)))
    fingerprint = stage.fingerprint()
    out_rows = []
    for row, record, failure in zip(rows, records, failures, strict=True):
        if failure is not None:
            record.errors.append(StageError(stage.name, f"decode failed: {failure}"))
        record.stages[stage.name] = fingerprint
        out = record.to_row()
        out["image_bytes"] = row["image_bytes"]
        out_rows.append(out)
    return pa.Table.from_pylist(out_rows, schema=IN_FLIGHT_SCHEMA)


class StageWorker:
    """A Ray Data callable class: builds and sets up one stage per actor, then runs batches."""

    def __init__(self, stage_config: Any, kind: str, max_pixels: int) -> None:
        self.stage = stage_config.create(kind)
        self.stage.setup()
        if stage_config.resources.num_gpus == 0:
            _limit_torch_threads(stage_config.resources.num_cpus)
        self.max_pixels = max_pixels

    def __call__(self, batch: pa.Table) -> pa.Table:
        return run_stage_on_table(self.stage, batch, self.max_pixels)


def _limit_torch_threads(num_cpus: float) -> None:
    """Keep a CPU actor within its CPU share (torch defaults to every core)."""
    torch = sys.modules.get("torch")
    if torch is None:  # the stage does not use torch: do not import it just for this
        return
    torch.set_num_threads(max(1, round(num_cpus)))
