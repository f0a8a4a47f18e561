"""Writer throughput: nested annotation shards through engine.store.writer/engine.store.reader against raw pyarrow.

Both sides get the same table (generated records with the annotation density of a full FLD-5B
style image: captions, OCR lines with quads, objects, grounded phrases, drops) and the same
Parquet settings (the profile's compression and row groups). The engine writes it in the batch
size the pipeline hands it, in shards, with counts, fsync and atomic renames; raw pyarrow writes
one file with ``pq.write_table``. Reading: ``engine.store.reader.read_version`` (manifest, dataset over
shards) against ``pq.read_table`` of the raw file. Ratios are engine/raw of the best run's wall
time and of its CPU time (this process, all threads): the CPU ratio holds on a shared machine.
"""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.config.settings import WriterConfig
from engine.store.counts import merge_counts
from engine.store.manifest import Manifest, publish
from engine.store.reader import read_version
from engine.store.writer import ShardWriter
from schemas.arrow import ANNOTATION_SCHEMA, SCHEMA_VERSION, records_to_table
from schemas.records import GroundedRegion, ImageRecord, Phrase, Provenance, Region, Text

RUNS = Path(__file__).resolve().parents[1] / ".state" / "bench" / "runs"
TARGET = 1.2
PIPELINE_BATCH = 16


def annotated_record(index: int, rng: np.random.Generator) -> ImageRecord:
    """One image's worth of annotations, about as dense as a fully annotated FLD-5B image."""
    ocr, detector, captioner = Provenance("ocr", "ocr@1"), Provenance("det", "det@1"), Provenance("cap", "cap@1")
    record = ImageRecord(f"{index:064x}", f"/data/{index}.jpg", 640, 480, "jpeg")
    for granularity, words in (("brief", 8), ("detailed", 30), ("more_detailed", 70)):
        text = " ".join(f"word{int(w)}" for w in rng.integers(0, 500, words))
        record.texts.append(Text(granularity, text, captioner, score=float(rng.random())))
    for line in range(int(rng.integers(0, 12))):
        x, y = float(rng.uniform(0, 500)), float(rng.uniform(0, 440))
        quad = (x, y, x + 120, y, x + 120, y + 30, x, y + 30)
        record.regions.append(Region("ocr_line", (x, y, x + 120, y + 30), f"line {line}", ocr, 0.9, quad=quad))
    for obj in range(int(rng.integers(5, 30))):
        x, y = float(rng.uniform(0, 500)), float(rng.uniform(0, 400))
        box = (x, y, x + float(rng.uniform(10, 140)), y + float(rng.uniform(10, 80)))
        record.regions.append(Region("object", box, f"thing{obj % 40}", detector, float(rng.random())))
    caption = record.texts[1]
    for start in range(0, min(len(caption.text), 120), 24):
        grounded = [GroundedRegion((10.0, 20.0, 200.0, 180.0), 0.7)]
        phrase = caption.text[start : start + 10]
        record.phrases.append(Phrase(caption.id, start, start + 10, phrase, grounded, detector, 0.6))
    for region in record.regions[-3:]:
        record.drop(region, stage="nms", rule="iou", value=0.8, threshold=0.7, by="other")
    return record


def annotation_table(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return records_to_table(annotated_record(i, rng) for i in range(rows))


def write_engine(table: pa.Table, root: Path, config: WriterConfig) -> None:
    """Write through ``ShardWriter`` in pipeline-sized batches and publish a manifest."""
    writer = ShardWriter(root, "annotations", "part-bench", ANNOTATION_SCHEMA, config)
    for offset in range(0, table.num_rows, PIPELINE_BATCH):
        writer.write(table.slice(offset, PIPELINE_BATCH))
    shards = writer.close()
    manifest = Manifest(
        version=1,
        run_id="bench",
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        schema_version=SCHEMA_VERSION,
        config_fingerprint="bench",
        profile="bench",
        stages={},
        models={},
        shards=shards,
        quarantine=[],
        counts=merge_counts(s.counts for s in shards),
    )
    publish(root, manifest)


def write_raw(table: pa.Table, path: Path, config: WriterConfig) -> None:
    pq.write_table(
        table,
        path,
        compression=config.compression,
        compression_level=config.level(),
        row_group_size=config.row_group_rows,
    )


def timed(function: Any, *args: Any) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, the result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, value


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench writer", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000, help="annotated images in the table (default 5000)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs of each side (default 3)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> dict[str, Any]:
    args = parse(argv)
    config = WriterConfig()
    table = annotation_table(args.rows)
    folder = RUNS / "writer"
    times: dict[str, list[tuple[float, float]]] = {
        "engine_write": [],
        "raw_write": [],
        "engine_read": [],
        "raw_read": [],
    }
    for _ in range(args.repeat):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        *spent, _ = timed(write_engine, table, folder / "engine", config)
        times["engine_write"].append(tuple(spent))
        *spent, _ = timed(write_raw, table, folder / "raw.parquet", config)
        times["raw_write"].append(tuple(spent))
        *spent, read_back = timed(read_version, folder / "engine")
        times["engine_read"].append(tuple(spent))
        *spent, raw_back = timed(pq.read_table, folder / "raw.parquet")
        times["raw_read"].append(tuple(spent))
        assert read_back.num_rows == raw_back.num_rows == table.num_rows
    wall = {name: min(w for w, _ in runs) for name, runs in times.items()}
    cpu = {name: min(c for _, c in runs) for name, runs in times.items()}
    engine_bytes = sum(p.stat().st_size for p in (folder / "engine").rglob("*.parquet"))
    raw_bytes = (folder / "raw.parquet").stat().st_size
    shutil.rmtree(folder, ignore_errors=True)
    rows = table.num_rows
    result = {
        "rows": rows,
        "annotations_per_row": round(
            sum(len(table.column(c).combine_chunks().flatten()) for c in ("texts", "regions", "phrases")) / rows, 1
        ),
        "table_mib": round(table.nbytes / 1024**2, 1),
        "write_rows_per_s": {"engine": rows / wall["engine_write"], "pyarrow": rows / wall["raw_write"]},
        "read_rows_per_s": {"engine": rows / wall["engine_read"], "pyarrow": rows / wall["raw_read"]},
        "file_mib": {"engine": round(engine_bytes / 1024**2, 2), "pyarrow": round(raw_bytes / 1024**2, 2)},
        "write_ratio": wall["engine_write"] / wall["raw_write"],
        "read_ratio": wall["engine_read"] / wall["raw_read"],
        "write_cpu_ratio": cpu["engine_write"] / cpu["raw_write"],
        "read_cpu_ratio": cpu["engine_read"] / cpu["raw_read"],
        "target_ratio": TARGET,
    }
    return result
