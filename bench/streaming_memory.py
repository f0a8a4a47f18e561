"""Memory under streaming: peak memory of a small and a ten times larger run (target: within 1.5x).

Each size runs in its own fresh process (so one run's peak cannot hide in the other's), with
every core, on the offline profile minus the stages named by ``--without`` (default: OCR, which
would take about 20 minutes for 2,000 images on 2 cores; models' memory is constant in the
number of images, the engine's streaming is what this measures).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

TARGET = 1.5
RUNS = Path(__file__).resolve().parents[1] / ".state" / "bench" / "runs"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench memory", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=(200, 2000), help="small and large run (200 2000)")
    parser.add_argument("--profile", default="offline")
    parser.add_argument("--without", nargs="*", default=["rapidocr"], help="backends left out (default rapidocr)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def measure(images: int, profile: str, without: list[str]) -> dict[str, Any]:
    """One pipeline run over ``images`` images in this process, with its memory peaks."""
    import shutil

    from bench.cluster import local_ray, scaled_config
    from bench.images import bench_images
    from bench.process_sampler import ProcessSampler
    from engine.config.profile import load_config
    from engine.run import RunRequest, run_pipeline

    config = load_config(profile)
    config = replace(
        config,
        specialists=tuple(s for s in config.specialists if s.backend not in without),
        filters=tuple(s for s in config.filters if s.backend not in without),
    )
    workers = len(os.sched_getaffinity(0))
    config = scaled_config(config, workers)
    paths = bench_images(images)
    output = RUNS / f"memory-{images}"
    shutil.rmtree(output, ignore_errors=True)
    with local_ray(workers), ProcessSampler() as sampler:
        started = time.perf_counter()
        request = RunRequest(tuple(str(p) for p in paths), output, config, full=True, progress_bars=False)
        result = run_pipeline(request, progress=lambda _: None)
        seconds = time.perf_counter() - started
    shutil.rmtree(output, ignore_errors=True)
    peaks = sampler.peaks
    return {
        "images": images,
        "annotated": result.annotated,
        "seconds": seconds,
        "stages": [f"{s.name}({s.backend})" for s in (*config.specialists, *config.filters)],
        "driver_max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_driver_mib": round(peaks.driver_mib, 1),
        "peak_workers_mib": round(peaks.workers_mib, 1),
        "peak_total_mib": round(peaks.total_mib, 1),
        "largest_processes_mib": peaks.largest(),
    }


def run_child(images: int, profile: str, without: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.streaming_memory", "--child", str(images), "--profile", profile]
    command += ["--without", *without]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory run over {images} images failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> dict[str, Any]:
    args = parse(argv)
    small, large = (run_child(n, args.profile, args.without) for n in args.sizes)
    return {
        "small": small,
        "large": large,
        "total_ratio": large["peak_total_mib"] / small["peak_total_mib"],
        "driver_ratio": large["peak_driver_mib"] / small["peak_driver_mib"],
        "workers_ratio": large["peak_workers_mib"] / small["peak_workers_mib"],
        "target_ratio": TARGET,
        "left_out": args.without,
    }


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    print(json.dumps(measure(arguments.child, arguments.profile, arguments.without)))
