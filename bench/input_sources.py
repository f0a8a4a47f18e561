"""Input sources: the same images annotated from local files, from a local S3 server, from WebDataset
shards and from an img2dataset Parquet table (local and on S3), side by side in one run.

Each variant is one ``run_pipeline`` (``full=True``, a fresh output) of the same profile (by default
the offline profile's filters without its specialists: what differs is how the images are found,
probed and read, not the work on them) on one local Ray that stays up between variants, after one
untimed warm-up run; with ``--repeat`` the variants run in rotation and each keeps its fastest run. The S3
server is the tests' moto server (``tests/support/s3_server.py``) on this machine: it shares the
cores with the engine, and its CPU seconds are counted with the run's. Shards and the table hold
only the images (no captions: every variant then does the same work).
"""

from __future__ import annotations

import argparse
import io
import json
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
from PIL import Image, ImageDraw

from bench.cluster import local_ray
from bench.process_sampler import ProcessSampler
from engine.config.profile import load_config
from engine.config.settings import EngineConfig
from engine.run import RunRequest, run_pipeline

RUNS = Path(__file__).resolve().parents[1] / ".state" / "bench" / "runs" / "input_sources"


def small_image(index: int, width: int = 64, height: int = 48) -> bytes:
    """A small JPEG (a gradient, two shapes, noise), always the same bytes for ``index``."""
    rng = np.random.default_rng(index)
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    pixels = rng.integers(0, 256, 3) * (1 - ramp) + rng.integers(0, 256, 3) * ramp
    image = Image.fromarray((pixels * np.ones((1, width, 1))).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(2):
        x0, y0 = int(rng.integers(0, width - 8)), int(rng.integers(0, height - 8))
        draw.ellipse(
            (x0, y0, x0 + 8 + int(rng.integers(0, 24)), y0 + 8 + int(rng.integers(0, 16))),
            fill=tuple(int(v) for v in rng.integers(0, 256, 3)),
        )
    noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, 4, (height, width, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def write_inputs(images: list[bytes], folder: Path, per_shard: int) -> dict[str, Path]:
    """The same images as files, as WebDataset shards of ``per_shard`` samples, and as one img2dataset table."""
    import tarfile

    shutil.rmtree(folder, ignore_errors=True)
    (folder / "files").mkdir(parents=True)
    (folder / "shards").mkdir()
    for i, data in enumerate(images):
        (folder / "files" / f"{i:06d}.jpg").write_bytes(data)
    for start in range(0, len(images), per_shard):
        with tarfile.open(folder / "shards" / f"{start // per_shard:05d}.tar", "w") as tar:
            for i in range(start, min(start + per_shard, len(images))):
                info = tarfile.TarInfo(f"{i:06d}.jpg")
                info.size = len(images[i])
                tar.addfile(info, io.BytesIO(images[i]))
    table = pa.table({"key": [f"{i:09d}" for i in range(len(images))], "jpg": pa.array(images, pa.binary())})
    pq.write_table(table, folder / "table.parquet", row_group_size=per_shard)
    return {"files": folder / "files", "shards": folder / "shards", "table": folder / "table.parquet"}


def upload(local: dict[str, Path], bucket: str) -> dict[str, str]:
    """The same inputs in the S3 bucket; their ``s3://`` URIs."""
    from engine.store.location import location

    for kind in ("files", "shards"):
        for path in sorted(local[kind].iterdir()):
            location(f"{bucket}/{kind}/{path.name}").write_bytes(path.read_bytes())
    location(f"{bucket}/table.parquet").write_bytes(local["table"].read_bytes())
    return {"files": f"{bucket}/files/", "shards": f"{bucket}/shards/", "table": f"{bucket}/table.parquet"}


def filters_only(profile: str) -> EngineConfig:
    config = load_config(profile)
    return replace(config, specialists=(), ray=replace(config.ray, num_cpus=None))


def run_variant(name: str, uri: str, config: EngineConfig, output: Path) -> dict[str, Any]:
    shutil.rmtree(output, ignore_errors=True)
    request = RunRequest((uri,), output, config, full=True, progress_bars=False)
    with ProcessSampler(interval=0.5, memory=False) as sampler:
        started = time.perf_counter()
        result = run_pipeline(request, progress=lambda _: None)
        seconds = time.perf_counter() - started
    shutil.rmtree(output, ignore_errors=True)
    extra = result.manifest.extra
    print(f"  {name}: {seconds:.1f} s ({extra['probe_seconds']:.1f} s probing)", file=sys.stderr)
    return {
        "seconds": seconds,
        "probe_s": extra["probe_seconds"],
        "annotate_and_write_s": seconds - extra["probe_seconds"],
        "cpu_s": sampler.cpu_s_in_block(),
        "images_per_s": result.annotated / seconds,
        "annotated": result.annotated,
        "quarantined": result.quarantined,
    }


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench input_sources", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="number of small images (default 1000)")
    parser.add_argument("--per-shard", type=int, default=100, help="images per WebDataset shard and row group")
    parser.add_argument("--profile", default="offline", help="profile whose filters run (default offline)")
    parser.add_argument("--with-specialists", action="store_true", help="run the profile's specialists too")
    parser.add_argument(
        "--workers", type=int, default=len(os.sched_getaffinity(0)), help="cores for Ray (default: all)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per variant, in rotation; the fastest counts")
    return parser.parse_args(argv)


def main(argv: list[str]) -> dict[str, Any]:
    from tests.support.s3_server import new_bucket, s3_server

    args = parse(argv)
    config = load_config(args.profile) if args.with_specialists else filters_only(args.profile)
    images = [small_image(i) for i in range(args.images)]
    local = write_inputs(images, RUNS / "inputs", args.per_shard)
    stages = [f"{s.name}({s.backend})" for s in config.stages]
    print(f"input_sources: {len(images)} images, stages {', '.join(stages)}", file=sys.stderr)
    results: dict[str, Any] = {}
    with s3_server(), local_ray(args.workers) as ray_start:
        remote = upload(local, new_bucket())
        variants = {
            "local_files": str(local["files"]),
            "s3_files": remote["files"],
            "local_webdataset": str(local["shards"]),
            "s3_webdataset": remote["shards"],
            "local_parquet": str(local["table"]),
            "s3_parquet": remote["table"],
        }
        # Ray's workers and the first imports are paid once, before any variant is timed.
        run_variant("warm-up", str(local["shards"] / "00000.tar"), config, RUNS / "out")
        for _ in range(args.repeat):
            for name, uri in variants.items():
                measured = run_variant(name, uri, config, RUNS / "out")
                if name not in results or measured["seconds"] < results[name]["seconds"]:
                    results[name] = measured
    base, base_cpu = results["local_files"]["seconds"], results["local_files"]["cpu_s"]
    return {
        "images": len(images),
        "image_bytes": sum(len(d) for d in images) // len(images),
        "per_shard": args.per_shard,
        "stages": stages,
        "workers": args.workers,
        "ray_start_s": ray_start,
        **results,
        "seconds_vs_local_files": {name: round(r["seconds"] / base, 3) for name, r in results.items()},
        # CPU seconds of the driver, Ray and the S3 server: the cost, whatever else shares the cores.
        "cpu_vs_local_files": {name: round(r["cpu_s"] / base_cpu, 3) for name, r in results.items()},
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
