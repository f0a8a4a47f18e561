"""Florence-2 export: ``{train,val}.jsonl`` lines of ``{image, prefix, suffix}`` plus the images, streamed.

The samples are ``refine.targets.florence_samples`` (the same conversion the model in the loop
trains on), so an exported corpus and a refinement round teach identical targets. ``prefix`` is
the task prompt as the processor takes it (task token, plus the caption or region for tasks with
an input), ``suffix`` the target with ``<loc_N>`` tokens. Images are split by image id, so every
sample of one image lands in the same split.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Sequence

from engine.exports.destination import export_folder
from engine.exports.images import source_bytes, write_image
from engine.exports.report import ExportReport
from engine.exports.split import split_of
from engine.ingest.decode import BadImage
from engine.store.location import Where, location
from refine.targets import florence_samples
from schemas.florence_tasks import TRAINING_TASKS as TASKS
from schemas.records import ImageRecord

SPLIT_FILES = {"train": "train.jsonl", "val": "val.jsonl"}


def check_tasks(tasks: Sequence[str] | None) -> tuple[str, ...]:
    """The Florence-2 tasks to export (all by default); an unknown one is a ValueError naming the known ones."""
    unknown = [t for t in tasks or () if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown Florence-2 tasks {unknown}; choose from {list(TASKS)}")
    return tuple(tasks or TASKS)


def export_florence(
    records: Iterable[ImageRecord],
    destination: Where,
    tasks: Sequence[str] | None = None,
    val_fraction: float = 0.1,
    keep_exif: bool = False,
) -> ExportReport:
    """Write the Florence-2 samples of ``records`` (``tasks``, default all) as JSONL with their images."""
    started = time.perf_counter()
    chosen = check_tasks(tasks)
    report = ExportReport("florence", location(destination))
    lines = dict.fromkeys(SPLIT_FILES, 0)
    with contextlib.ExitStack() as files:
        folder = files.enter_context(export_folder(destination))
        handles = {
            split: files.enter_context(open(folder / name, "w", encoding="utf-8"))
            for split, name in SPLIT_FILES.items()
        }
        for record in records:
            report.records += 1
            samples = florence_samples(record, chosen)
            if not samples:
                report.skip("no annotation for the chosen tasks")
                continue
            data = source_bytes(record)
            if data is None:
                report.skip("source missing or changed since annotation")
                continue
            try:
                file_name = write_image(record, data, folder / "images", keep_exif)
            except BadImage as error:
                report.skip(f"undecodable image ({error.reason})")
                continue
            split = split_of(record.image_id, val_fraction)
            for sample in samples:
                line = {
                    "image": f"images/{file_name}",
                    "prefix": sample.prefix,
                    "suffix": sample.target,
                    "task": sample.task,
                    "image_id": record.image_id,
                    "width": record.width,
                    "height": record.height,
                }
                handles[split].write(json.dumps(line, ensure_ascii=False) + "\n")
                report.annotations[f"samples {sample.task}"] += 1
            lines[split] += len(samples)
            report.images += 1
    report.files = {name: lines[split] for split, name in SPLIT_FILES.items()}
    report.seconds = time.perf_counter() - started
    return report
