"""Running a chain of stages over an Arrow batch, isolating failures to the images that caused them.

``run_stages_on_table`` is a pure function (no Ray): one Arrow -> records -> Arrow conversion and at
most one decode per image for the whole chain. ``StageChainWorker`` builds and sets up a chain once per
process, so each stage's model loads once per actor (a model step's inner worker, ``worker_deaths.py``).
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from engine.config.settings import StageConfig
from engine.execute.stage_timing import BatchTimer, split_timings, with_timings
from engine.ingest.decode import BadImage, decode_image
from engine.ingest.image_bytes import attach_image_bytes
from schemas.arrow import IN_FLIGHT_SCHEMA
from schemas.records import ImageRecord, StageError
from schemas.stage import Stage, stage_fingerprint
from schemas.validation import SchemaError, validate_record

MAX_ERROR_CHARS = 2000
# The stage name of an error on a row that was invalid before any stage of the chain touched it.
INPUT_CHECK = "input_check"


def _problem(record: ImageRecord) -> str | None:
    """Why ``record`` is invalid, or None."""
    try:
        validate_record(record)
    except SchemaError as error:
        return str(error)
    return None


def _error_message(error: BaseException) -> str:
    trace = "".join(traceback.format_exception_only(type(error), error)).strip()
    return trace[:MAX_ERROR_CHARS]


def stages_map(value: object) -> dict[str, str]:
    """A ``stages`` cell as read from Arrow (a list of pairs) or from Python (a dict)."""
    items = value.items() if isinstance(value, dict) else (value or [])
    return {str(k): str(v) for k, v in items}  # type: ignore[union-attr]


def _decode(rows: list[dict[str, Any]], wanted: set[int], max_pixels: int) -> tuple[list[Any], list[str | None]]:
    images: list[np.ndarray | None] = [None] * len(rows)
    failures: list[str | None] = [None] * len(rows)
    for i in wanted:
        try:
            images[i] = decode_image(rows[i]["image_bytes"], max_pixels)[0]
        except BadImage as error:
            failures[i] = str(error)
    return images, failures


def _set_aside_earlier_errors(
    rows: list[dict[str, Any]], stages: Sequence[Stage], todo: list[list[int]]
) -> list[list[dict[str, str]]]:
    """Take off each row the errors that earlier runs left by the stages about to run on it (a refresh keeps
    them on a stage it retries, ``engine/refresh/incremental.py``), and return them: a stage that fails again
    gets them back before its new error, so the row counts its failures; one that succeeds drops them."""
    names: list[set[str]] = [set() for _ in rows]
    for stage, indices in zip(stages, todo, strict=True):
        for i in indices:
            names[i].add(stage.name)
    earlier: list[list[dict[str, str]]] = []
    for row, running in zip(rows, names, strict=True):
        errors = row.get("errors") or []
        earlier.append([e for e in errors if e["stage"] in running])
        if earlier[-1]:
            row["errors"] = [e for e in errors if e["stage"] not in running]
    return earlier


class _Batch:
    """The records of one Arrow batch, their decoded images, and which rows each stage must process."""

    def __init__(
        self,
        stages: Sequence[Stage],
        fingerprints: list[str],
        table: pa.Table,
        max_pixels: int,
        todo: list[list[int]],
        timer: BatchTimer,
    ) -> None:
        self.stages, self.fingerprints, self.todo, self.timer = stages, fingerprints, todo, timer
        self.rows = table.to_pylist()
        self.earlier = _set_aside_earlier_errors(self.rows, stages, todo)
        self.records = [ImageRecord.from_row(row) for row in self.rows]
        wanted = {i for stage, rows in zip(stages, todo, strict=True) if stage.needs_pixels for i in rows}
        self.images, self.failures = _decode(self.rows, wanted, max_pixels)

    def run_batched(self) -> None:
        """Each stage once over all its rows; raises if a stage raises (the caller then goes image by image)."""
        for stage, fingerprint, rows in zip(self.stages, self.fingerprints, self.todo, strict=True):
            ready = [i for i in rows if not stage.needs_pixels or self.failures[i] is None]
            started = time.perf_counter()
            if ready:
                images = [self.images[i] for i in ready] if stage.needs_pixels else None
                stage.process([self.records[i] for i in ready], images)
            self.timer.add(stage.name, rows, time.perf_counter() - started)
            self._finish(stage, fingerprint, rows)

    def invalid(self) -> list[int]:
        """Rows a stage processed that now fail ``validate_record``."""
        processed = sorted({i for rows in self.todo for i in rows})
        return [i for i in processed if _problem(self.records[i]) is not None]

    def run_image_by_image(self, only: Sequence[int] | None = None) -> None:
        """From the batch's original rows, every image (of ``only``) alone: a stage that fails on an image, or
        leaves its record invalid (``schemas.validation``), loses only its own work there and leaves a
        :class:`StageError` on it; the record goes on to the next stage as it was before."""
        indices = range(len(self.rows)) if only is None else only
        for i in indices:
            self.records[i] = ImageRecord.from_row(self.rows[i])
            problem = _problem(self.records[i])
            if problem is not None:  # not a stage's doing: say so once, and blame no stage for it
                self.records[i].errors.append(StageError(INPUT_CHECK, f"invalid record: {problem}"))
        chosen = set(indices)
        for stage, fingerprint, rows in zip(self.stages, self.fingerprints, self.todo, strict=True):
            rows = [i for i in rows if i in chosen]
            for i in rows:
                if stage.needs_pixels and self.failures[i] is not None:
                    self.timer.add(stage.name, [i], 0.0)
                    continue
                before = self.records[i].to_row()
                valid_before = _problem(self.records[i]) is None
                started = time.perf_counter()
                try:
                    stage.process([self.records[i]], [self.images[i]] if stage.needs_pixels else None)
                    problem = _problem(self.records[i]) if valid_before else None
                    if problem is not None:
                        raise SchemaError(f"invalid record: {problem}")
                except Exception as error:
                    self.records[i] = ImageRecord.from_row(before)
                    self.records[i].errors.append(StageError(stage.name, _error_message(error)))
                self.timer.add(stage.name, [i], time.perf_counter() - started)
            self._finish(stage, fingerprint, rows)

    def _finish(self, stage: Stage, fingerprint: str, rows: list[int]) -> None:
        for i in rows:
            if stage.needs_pixels and self.failures[i] is not None:
                self.records[i].errors.append(StageError(stage.name, f"decode failed: {self.failures[i]}"))
            self.records[i].stages[stage.name] = fingerprint

    def table(self) -> pa.Table:
        out_rows = []
        for row, record, earlier in zip(self.rows, self.records, self.earlier, strict=True):
            failed_again = {error.stage for error in record.errors}
            record.errors = [StageError(**e) for e in earlier if e["stage"] in failed_again] + record.errors
            out = record.to_row()
            out["image_bytes"] = row["image_bytes"]
            out_rows.append(out)
        return pa.Table.from_pylist(out_rows, schema=IN_FLIGHT_SCHEMA)


def run_stages_on_table(
    stages: Sequence[Stage],
    table: pa.Table,
    max_pixels: int,
    only_stale: bool = True,
    timer: BatchTimer | None = None,
) -> pa.Table:
    """Apply ``stages`` in order to the rows of ``table`` (in-flight schema); return the updated table.

    With ``only_stale`` a stage skips rows that already carry its current fingerprint, and a batch
    that no stage needs passes through untouched. The chain first runs batched. If a stage raises,
    the chain runs again image by image from the original rows, so one bad image costs only that
    stage's annotations on it: it gets a :class:`StageError` and the run goes on. A row that the chain
    leaves invalid (``schemas.validation.validate_record``) runs again alone, so the stage that broke it
    loses its work there and gets the error: no shard holds an inconsistent row. Every processed row
    records each stage's fingerprint in ``stages`` (``schemas.stage.stage_fingerprint``). ``timer``, when
    given, receives each stage's processed rows and seconds (a batch run image by image counts both passes).
    """
    recorded = [stages_map(cell) for cell in table.column("stages").to_pylist()]
    fingerprints = [stage_fingerprint(stage) for stage in stages]
    todo = [
        [i for i, seen in enumerate(recorded) if not only_stale or seen.get(stage.name) != fingerprint]
        for stage, fingerprint in zip(stages, fingerprints, strict=True)
    ]
    if not any(todo):
        return table
    batch = _Batch(stages, fingerprints, table, max_pixels, todo, timer or BatchTimer())
    try:
        batch.run_batched()
    except Exception:
        batch.run_image_by_image()
        return batch.table()
    invalid = batch.invalid()
    if invalid:  # rare: find, image by image, the stage that broke each record
        batch.run_image_by_image(invalid)
    return batch.table()


def run_step(
    stages: Sequence[Stage],
    batch: pa.Table,
    max_pixels: int,
    read_bytes: bool | None,
    loads: dict[str, float] | None = None,
) -> pa.Table:
    """One pipeline step: with ``read_bytes`` (True or False) each row's image bytes are attached first,
    read from its file or left empty (the first step); None: the batch already has them.

    The output carries each stage's timings (``engine/execute/stage_timing.py``) after those of earlier
    steps, and ``loads`` (setup seconds by stage, reported once: the dict is emptied)."""
    batch, earlier = split_timings(batch)
    if read_bytes is not None:
        batch = attach_image_bytes(batch, read_bytes)
    timer = BatchTimer()
    out = run_stages_on_table(stages, batch, max_pixels, timer=timer)
    column = timer.column(out.num_rows, dict(loads or {}), earlier)
    if loads:
        loads.clear()
    return with_timings(out, column)


def set_up(stages: Sequence[Stage]) -> dict[str, float]:
    """Set each stage up (load its model); return the seconds each took."""
    seconds = {}
    for stage in stages:
        started = time.perf_counter()
        stage.setup()
        seconds[stage.name] = time.perf_counter() - started
    return seconds


def run_stage_on_table(stage: Stage, table: pa.Table, max_pixels: int) -> pa.Table:
    """Apply one ``stage`` to every row of ``table``, whatever fingerprints the rows carry."""
    return run_stages_on_table([stage], table, max_pixels, only_stale=False)


class StageChainWorker:
    """A Ray Data callable class: builds and sets up a chain of stages once per actor, then runs batches.

    Stages skip rows that already carry their fingerprint (incremental refresh); ``read_bytes`` as for
    :func:`run_step`."""

    def __init__(self, stages: Sequence[StageConfig], max_pixels: int, read_bytes: bool | None = None) -> None:
        self.stages = [config.create() for config in stages]
        self.loads = set_up(self.stages)
        if all(config.resources.num_gpus == 0 for config in stages):
            _limit_torch_threads(max(config.resources.num_cpus for config in stages))
        self.max_pixels, self.read_bytes = max_pixels, read_bytes

    def __call__(self, batch: pa.Table) -> pa.Table:
        return run_step(self.stages, batch, self.max_pixels, self.read_bytes, self.loads)


def _limit_torch_threads(num_cpus: float) -> None:
    """Keep a CPU actor within its CPU share (torch defaults to every core)."""
    torch = sys.modules.get("torch")
    if torch is None:  # the stage does not use torch: do not import it just for this
        return
    torch.set_num_threads(max(1, round(num_cpus)))
