"""Stage profile: where an image's time goes, in one process and through Ray.

In process (no Ray), per image: probing (read, hash, full decode), loading (read, hash), and for
each stage of the profile its decode, its model (``process``), and the Arrow <-> record
conversions around it (``run_stage_on_table`` minus the other two); the in-flight bytes each
stage hands to the next (its object-store traffic in the Ray pipeline); the shard writer.
Through Ray (``run_pipeline`` on every core): CPU seconds and peak memory (PSS) of the driver
and of every Ray process, grouped by what each process ran.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bench.cluster import local_ray, scaled_config
from bench.images import bench_images
from bench.process_sampler import ProcessSampler
from engine.config.profile import load_config
from engine.config.settings import EngineConfig, WriterConfig
from engine.execute.stage_runner import run_stage_on_table
from engine.ingest.decode import decode_image
from engine.ingest.probe import ProbedFile, plan_work, probe_file
from engine.run import RunRequest, run_pipeline
from engine.store.writer import ShardWriter
from schemas.arrow import ANNOTATION_SCHEMA, IN_FLIGHT_SCHEMA
from schemas.records import ImageRecord

RUNS = Path(__file__).resolve().parents[1] / ".state" / "bench" / "runs"


class TimedStage:
    """A stage whose ``process`` calls are timed; everything else is the stage's own."""

    def __init__(self, stage: Any) -> None:
        self.stage = stage
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stage, name)

    def process(self, records: list[ImageRecord], images: list[np.ndarray] | None) -> None:
        started = time.perf_counter()
        try:
            self.stage.process(records, images)
        finally:
            self.seconds += time.perf_counter() - started


def in_flight_table(probed: list[ProbedFile]) -> pa.Table:
    work, _ = plan_work(probed)
    rows = []
    for item in work:
        row = ImageRecord(item.image_id, item.source_uri, item.width, item.height, item.format).to_row()
        row["image_bytes"] = Path(item.source_uri).read_bytes()
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=IN_FLIGHT_SCHEMA)


def profile_in_process(config: EngineConfig, paths: list[Path]) -> dict[str, Any]:
    """Milliseconds per image of every step, run one after another in this process."""
    count = len(paths)
    per_image = {}
    started = time.perf_counter()
    probed = [probe_file(str(p), config.ingest.max_pixels, config.ingest.max_bytes) for p in paths]
    per_image["probe (read, sha256, decode)"] = time.perf_counter() - started
    started = time.perf_counter()
    table = in_flight_table(probed)
    for data in table.column("image_bytes").to_pylist():
        hashlib.sha256(data).hexdigest()
    per_image["load (read, sha256)"] = time.perf_counter() - started
    started = time.perf_counter()
    for data in table.column("image_bytes").to_pylist():
        decode_image(data, config.ingest.max_pixels)
    decode = time.perf_counter() - started
    stages: list[dict[str, Any]] = []
    for stage_config in config.stages:
        stage = TimedStage(stage_config.create())
        setup_started = time.perf_counter()
        stage.setup()
        setup = time.perf_counter() - setup_started
        batch, started, outputs = stage_config.resources.batch_size, time.perf_counter(), []
        for offset in range(0, table.num_rows, batch):
            outputs.append(run_stage_on_table(stage, table.slice(offset, batch), config.ingest.max_pixels))
        total = time.perf_counter() - started
        table = pa.concat_tables(outputs)
        stage_decode = decode if stage.needs_pixels else 0.0
        stages.append(
            {
                "stage": f"{stage_config.name}({stage_config.backend})",
                "setup_s": round(setup, 3),
                "model_ms": 1000 * stage.seconds / count,
                "decode_ms": 1000 * stage_decode / count,
                "arrow_records_ms": 1000 * max(0.0, total - stage.seconds - stage_decode) / count,
                "out_kib_per_image": table.nbytes / 1024 / count,
                "out_annotation_kib_per_image": table.drop_columns(["image_bytes"]).nbytes / 1024 / count,
            }
        )
    output = RUNS / "profile-writer"
    shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    writer = ShardWriter(output, "annotations", "part-profile", ANNOTATION_SCHEMA, WriterConfig())
    writer.write(table.drop_columns(["image_bytes"]))
    writer.close()
    per_image["write shards"] = time.perf_counter() - started
    shutil.rmtree(output, ignore_errors=True)
    model = sum(s["model_ms"] for s in stages)
    decoding = sum(s["decode_ms"] for s in stages) + 1000 * (per_image["probe (read, sha256, decode)"]) / count
    return {
        "images": count,
        "steps_ms_per_image": {name: 1000 * seconds / count for name, seconds in per_image.items()},
        "stages": stages,
        "model_ms_per_image": model,
        "decode_ms_per_image": decoding,
        "decodes_per_image": sum(1 for s in stages if s["decode_ms"]) + 1,
    }


def _summ(summary: Any, scale: float = 1.0) -> float:
    return round(summary.sum * scale, 3) if summary is not None else 0.0


def ray_data_operators() -> list[dict[str, Any]]:
    """Per operator of every Ray Data execution of the run: rows, bytes put in the object store, task times."""
    import ray

    rows = []
    for number, summary in enumerate(ray.data.list_stats_summaries()):
        for op in summary.operators_stats:
            rows.append(
                {
                    "execution": number,
                    "operator": op.operator_name[:80],
                    "rows": int(_summ(op.output_num_rows)),
                    "object_store_mib": _summ(op.output_size_bytes, 1 / 1024**2),
                    "task_wall_s": _summ(op.wall_time),
                    "task_cpu_s": _summ(op.cpu_time),
                }
            )
    return rows


def profile_ray(config: EngineConfig, paths: list[Path], workers: int) -> dict[str, Any]:
    """CPU seconds and peak memory per Ray process for one ``run_pipeline`` on ``workers`` cores."""
    from ray.data import DataContext

    output = RUNS / "profile-ray"
    shutil.rmtree(output, ignore_errors=True)
    with local_ray(workers), ProcessSampler() as sampler:
        DataContext.get_current().enable_stats_summary_collection = True
        started = time.perf_counter()
        request = RunRequest(
            tuple(str(p) for p in paths), output, scaled_config(config, workers), full=True, progress_bars=False
        )
        run_pipeline(request, progress=lambda _: None)
        seconds = time.perf_counter() - started
        operators = ray_data_operators()
    shutil.rmtree(output, ignore_errors=True)
    peaks = sampler.peaks
    cpu = sampler.cpu_by_name()
    return {
        "workers": workers,
        "seconds": seconds,
        "cpu_s_by_process": cpu,
        "cpu_s_total": round(sum(cpu.values()), 2),
        "peak_driver_mib": round(peaks.driver_mib, 1),
        "peak_workers_mib": round(peaks.workers_mib, 1),
        "peak_total_mib": round(peaks.total_mib, 1),
        "largest_processes_mib": peaks.largest(),
        "operators": operators,
    }


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench profile", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60, help="number of images (default 60)")
    parser.add_argument("--profile", default="offline", help="profile name or YAML path (default offline)")
    parser.add_argument("--workers", type=int, default=1, help="cores for the Ray run (default 1: pure overhead)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> dict[str, Any]:
    args = parse(argv)
    config = load_config(args.profile)
    paths = bench_images(args.images)
    result = {"profile": args.profile, "in_process": profile_in_process(config, paths)}
    result["ray"] = profile_ray(config, paths, args.workers)
    return result
