"""Engine overhead: the offline profile through the Ray pipeline against a plain loop, side by side.

The loop reads, hashes and decodes each image once and calls every stage of the profile on it,
in one process pinned to one core. The pipeline runs the same profile through ``run_pipeline``
(probe, plan, load, one streaming ``map_batches`` per stage, shard writer, manifest) on a local
Ray pinned first to one core (one actor per model stage), then to every core (one actor per core
per model stage). Ray's start-up is timed apart; everything inside ``run_pipeline`` counts.
Besides wall time, CPU seconds of every process (driver and all of Ray's, from their start):
on a shared machine they measure the engine's cost even when other work steals the cores.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from bench.cluster import cores_for, local_ray, pinned, scaled_config
from bench.images import bench_images
from bench.process_sampler import ProcessSampler
from engine.config.profile import load_config
from engine.config.settings import EngineConfig
from engine.ingest.decode import decode_image
from engine.run import RunRequest, run_pipeline
from schemas.records import ImageRecord

RUNS = Path(__file__).resolve().parents[1] / ".state" / "bench" / "runs"
OVERHEAD_TARGET = 1.15
SPEEDUP_TARGET = 1.6


def stage_objects(config: EngineConfig) -> list[Any]:
    return [s.create() for s in config.stages]


def run_loop(config: EngineConfig, paths: list[Path]) -> dict[str, Any]:
    """Every stage of ``config`` over ``paths`` in a plain loop, one image at a time, in this process."""
    cpu_before = psutil.Process().cpu_times()
    started = time.perf_counter()
    stages = stage_objects(config)
    for stage in stages:
        stage.setup()
    setup = time.perf_counter() - started
    decode = model = 0.0
    regions = 0
    for path in paths:
        tick = time.perf_counter()
        data = path.read_bytes()
        image, fmt = decode_image(data, config.ingest.max_pixels)
        height, width = image.shape[:2]
        record = ImageRecord(hashlib.sha256(data).hexdigest(), str(path), width, height, fmt, [str(path)])
        tock = time.perf_counter()
        for stage in stages:
            stage.process([record], [image] if stage.needs_pixels else None)
        decode += tock - tick
        model += time.perf_counter() - tock
        regions += len(record.regions)
    seconds = time.perf_counter() - started
    cpu_after = psutil.Process().cpu_times()
    return {
        "seconds": seconds,
        "cpu_s": cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system,
        "images_per_s": len(paths) / seconds,
        "setup_s": setup,
        "decode_s": decode,
        "stages_s": model,
        "regions": regions,
    }


def run_engine(config: EngineConfig, paths: list[Path], workers: int, output: Path) -> dict[str, Any]:
    """``run_pipeline`` over ``paths`` on a local Ray pinned to ``workers`` cores."""
    shutil.rmtree(output, ignore_errors=True)
    scaled = scaled_config(config, workers)
    with local_ray(workers) as ray_start:
        request = RunRequest(tuple(str(p) for p in paths), output, scaled, full=True, progress_bars=False)
        with ProcessSampler(interval=1.0, memory=False) as sampler:
            started = time.perf_counter()
            result = run_pipeline(request, progress=lambda _: None)
            seconds = time.perf_counter() - started
    shutil.rmtree(output, ignore_errors=True)
    return {
        "workers": workers,
        "seconds": seconds,
        "cpu_s": sampler.cpu_s(),
        "cpu_s_by_process": dict(list(sampler.cpu_by_name().items())[:6]),
        "images_per_s": len(paths) / seconds,
        "ray_start_s": ray_start,
        "annotated": result.annotated,
        "regions": result.manifest.counts["regions"]["total"],
        "shards": len(result.manifest.shards),
    }


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench overhead", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="number of images (default 200)")
    parser.add_argument("--profile", default="offline", help="profile name or YAML path (default offline)")
    parser.add_argument(
        "--workers", type=int, default=len(os.sched_getaffinity(0)), help="cores for the scaled run (default: all)"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> dict[str, Any]:
    args = parse(argv)
    config = load_config(args.profile)
    paths = bench_images(args.images)
    stages = [f"{s.name}({s.backend})" for s in (*config.specialists, *config.filters)]
    print(f"overhead: {len(paths)} images, profile {args.profile}: {', '.join(stages)}", file=sys.stderr)
    with pinned(cores_for(1)):
        loop = run_loop(config, paths)
    print(f"  loop: {loop['seconds']:.1f} s", file=sys.stderr)
    one = run_engine(config, paths, 1, RUNS / "overhead-1")
    print(f"  pipeline, 1 worker: {one['seconds']:.1f} s", file=sys.stderr)
    result: dict[str, Any] = {
        "images": len(paths),
        "profile": args.profile,
        "stages": stages,
        "loop": loop,
        "pipeline_1_worker": one,
        "overhead_1_worker": one["seconds"] / loop["seconds"],
        "cpu_overhead_1_worker": one["cpu_s"] / loop["cpu_s"],
        "engine_cpu_s_1_worker": one["cpu_s"] - loop["cpu_s"],
        "overhead_target": OVERHEAD_TARGET,
    }
    if args.workers > 1:
        many = run_engine(config, paths, args.workers, RUNS / f"overhead-{args.workers}")
        print(f"  pipeline, {args.workers} workers: {many['seconds']:.1f} s", file=sys.stderr)
        result[f"pipeline_{args.workers}_workers"] = many
        result[f"speedup_{args.workers}_workers"] = loop["seconds"] / many["seconds"]
        result[f"cpu_overhead_{args.workers}_workers"] = many["cpu_s"] / loop["cpu_s"]
        result["speedup_target"] = SPEEDUP_TARGET
    result["load_average"] = os.getloadavg()[0]
    result["same_regions"] = all(result[k]["regions"] == loop["regions"] for k in result if k.startswith("pipeline_"))
    return result
