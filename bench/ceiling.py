"""Ceiling: the engine (filters-only profile) against the plain Ray Data script a user would write instead.

The same N small PNGs (48x64) go through three programs on this machine in one run:

- **engine**: ``run_pipeline`` with the offline profile's filters and no specialists (``full=True``, a
  fresh output): discovery, probing, planning, annotation, shard writing, manifest;
- **script**: ``read_binary_files`` -> sha256 + decode (Pillow) -> ``write_parquet``, nothing else;
- **loop**: the script's work in a plain Python loop in this process (one core), for reference.

Engine and script share one local Ray (started once, both warmed up on a few images first) and run
in rounds of alternating order (engine first, then script first, ...), so neither always meets the
other's leftovers or the machine's load at the same moment; each keeps its fastest round. The target
is engine / script <= 1.2 at 20,000 images.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from bench.cluster import local_ray
from bench.process_sampler import ProcessSampler
from engine.config.profile import load_config
from engine.config.settings import EngineConfig
from engine.run import RunRequest, run_pipeline

STATE = Path(__file__).resolve().parents[1] / ".state" / "bench"
IMAGES = STATE / "tiny-png-v1"
RUNS = STATE / "runs" / "ceiling"
TARGET = 1.2
WARM_UP_IMAGES = 64


def tiny_png(index: int, width: int = 64, height: int = 48) -> bytes:
    """A 48x64 PNG (a gradient and noise), always the same bytes for ``index`` and unique per index."""
    rng = np.random.default_rng(index)
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    pixels = rng.integers(0, 256, 3) * (1 - ramp) + rng.integers(0, 256, 3) * ramp
    noisy = pixels * np.ones((1, width, 1)) + rng.normal(0, 6, (height, width, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def tiny_pngs(count: int, cache: Path | None = None) -> Path:
    """A folder holding exactly the first ``count`` tiny PNGs (generated once, cached across runs)."""
    folder = (cache or IMAGES) / f"n{count}"
    marker = folder / ".complete"
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for index in range(count):
            (folder / f"{index:07d}.png").write_bytes(tiny_png(index))
        marker.touch()
    return folder


def filters_only(profile: str = "offline") -> EngineConfig:
    """``profile`` without its specialists, on every core Ray was given."""
    config = load_config(profile)
    return replace(config, specialists=(), ray=replace(config.ray, num_cpus=None))


def hash_and_decode(paths: list[str], blobs: list[bytes]) -> dict[str, list[Any]]:
    """What the script does per image: its content hash, decoded size and format."""
    ids, widths, heights, formats = [], [], [], []
    for data in blobs:
        ids.append(hashlib.sha256(data).hexdigest())
        with Image.open(io.BytesIO(data)) as image:
            pixels = np.asarray(image.convert("RGB"))
            formats.append((image.format or "").lower())
        heights.append(pixels.shape[0])
        widths.append(pixels.shape[1])
    return {"image_id": ids, "source_uri": paths, "width": widths, "height": heights, "format": formats}


def _script_batch(batch: pa.Table) -> pa.Table:
    columns = hash_and_decode(batch.column("path").to_pylist(), batch.column("bytes").to_pylist())
    return pa.table(columns)


def run_script(folder: Path, output: Path) -> dict[str, Any]:
    """The plain Ray Data script: read -> sha256 + decode -> write_parquet."""
    import ray

    shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    dataset = ray.data.read_binary_files(str(folder), include_paths=True)
    dataset.map_batches(_script_batch, batch_format="pyarrow", batch_size=256).write_parquet(str(output))
    seconds = time.perf_counter() - started
    rows = pq.read_table(output).num_rows
    shutil.rmtree(output, ignore_errors=True)
    return {"seconds": seconds, "rows": rows}


def run_engine(folder: Path, output: Path, config: EngineConfig) -> dict[str, Any]:
    """The engine, filters only, over every image of ``folder``, into a fresh output."""
    shutil.rmtree(output, ignore_errors=True)
    request = RunRequest((str(folder),), output, config, full=True, progress_bars=False)
    started = time.perf_counter()
    result = run_pipeline(request, progress=lambda _: None)
    seconds = time.perf_counter() - started
    rows = sum(shard.rows for shard in result.manifest.shards)
    shutil.rmtree(output, ignore_errors=True)
    return {"seconds": seconds, "rows": rows, "probe_s": result.manifest.extra["probe_seconds"]}


def run_loop(folder: Path, output: Path) -> dict[str, Any]:
    """The script's work in a plain loop in this process, one Parquet file at the end."""
    started = time.perf_counter()
    paths = sorted(str(p) for p in folder.glob("*.png"))
    columns = hash_and_decode(paths, [Path(p).read_bytes() for p in paths])
    output.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), output / "loop.parquet")
    seconds = time.perf_counter() - started
    shutil.rmtree(output, ignore_errors=True)
    return {"seconds": seconds, "rows": len(paths)}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench ceiling", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000, help="number of 48x64 PNGs (default 20000)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of engine and script, alternating order")
    parser.add_argument("--profile", default="offline", help="profile whose filters run (default offline)")
    parser.add_argument(
        "--workers", type=int, default=len(os.sched_getaffinity(0)), help="cores for Ray (default: all)"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> dict[str, Any]:
    args = parse(argv)
    config = filters_only(args.profile)
    folder, warm = tiny_pngs(args.images), tiny_pngs(WARM_UP_IMAGES)
    print(f"ceiling: {args.images} PNGs, filters {', '.join(s.name for s in config.stages)}", file=sys.stderr)
    loop = run_loop(folder, RUNS / "loop")
    print(f"  loop: {loop['seconds']:.1f} s", file=sys.stderr)
    programs = {
        "engine": lambda images: run_engine(images, RUNS / "engine", config),
        "script": lambda images: run_script(images, RUNS / "script"),
    }
    rounds: list[dict[str, float]] = []
    with local_ray(args.workers) as ray_start, ProcessSampler(interval=1.0, memory=False) as sampler:
        for program in programs.values():
            program(warm)
        for index in range(args.rounds):
            order = list(programs) if index % 2 == 0 else list(reversed(programs))
            measured: dict[str, float] = {}
            for name in order:
                sampler.sample()
                cpu_before = sampler.cpu_s_in_block()
                result = programs[name](folder)
                sampler.sample()
                if result["rows"] != args.images:
                    raise RuntimeError(f"{name} wrote {result['rows']} rows for {args.images} images")
                measured[name] = result["seconds"]
                measured[f"{name}_cpu_s"] = sampler.cpu_s_in_block() - cpu_before
                print(f"  round {index + 1}, {name}: {result['seconds']:.1f} s", file=sys.stderr)
            rounds.append(measured)
    engine, script = (min(r[name] for r in rounds) for name in programs)
    return {
        "images": args.images,
        "workers": args.workers,
        "stages": [s.name for s in config.stages],
        "ray_start_s": ray_start,
        "rounds": rounds,
        "engine_s": engine,
        "script_s": script,
        "loop_s": loop["seconds"],
        "engine_vs_script": engine / script,
        "engine_vs_script_by_round": [r["engine"] / r["script"] for r in rounds],
        "engine_vs_loop": engine / loop["seconds"],
        "target": TARGET,
        "load_average": os.getloadavg()[0],
    }
