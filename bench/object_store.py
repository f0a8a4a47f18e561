"""Object storage: the same runs and commands on a local folder and on an S3 server, side by side.

One local Ray serves both sides. Each side runs, in this order: a first run of the profile over the
images (probe, annotate, write, publish), a rerun of the same inputs (everything carried over: no
Ray, only the store's reads, the lock and the publish), ``inspect --verify`` (every file hashed) and
``export --format coco`` (a local export folder; the S3 side exports to S3). The S3 server is moto's
standalone server on this machine (``moto[server]``, a dev dependency): its latency is a loopback
HTTP round trip and a Python handler, not a data centre's, so the ratios say what the protocol costs
in requests, not what a real bucket costs in distance.

Then the store's own costs per run, measured alone on both sides (mean of ``--repeat`` calls): take
and release the lock, publish a version (the version file created only if absent, then
``manifest.json``), journal one shard, check the output before a run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.cluster import local_ray, scaled_config
from bench.images import bench_images
from engine.cli import main as cli
from engine.config.profile import load_config
from engine.run import RunRequest, run_pipeline
from engine.store.journal import RunJournal
from engine.store.location import location
from engine.store.manifest import publish, require_manifest
from engine.store.output_lock import OutputLock
from engine.store.writer import ShardInfo

RUNS = Path(__file__).resolve().parents[1] / ".state" / "bench" / "runs"


def skip_reason() -> str | None:
    try:
        import moto.server  # noqa: F401
    except ImportError:
        return "moto[server] is not installed (pip install -e '.[dev]'): the S3 side needs a local S3 server"
    return None


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def quiet_cli(args: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()):
        return cli(args)


def side(name: str, root: str, export_to: str, inputs: list[str], config: Any) -> dict[str, Any]:
    """The run, the rerun, inspect --verify and a COCO export on one dataset root."""
    request = RunRequest(tuple(inputs), root, config, progress_bars=False)
    first_s, first = timed(lambda: run_pipeline(request, progress=lambda _: None))
    rerun_s, rerun = timed(lambda: run_pipeline(request, progress=lambda _: None))
    inspect_s, code = timed(lambda: quiet_cli(["inspect", root, "--verify", "--no-stats"]))
    assert code == 0, f"inspect --verify failed on {root}"
    export_s, code = timed(lambda: quiet_cli(["export", root, "--format", "coco", "--to", export_to]))
    assert code == 0, f"export failed on {root}"
    print(f"  {name}: run {first_s:.1f} s, rerun {rerun_s:.2f} s, inspect {inspect_s:.2f} s", file=sys.stderr)
    return {
        "run_s": first_s,
        "rerun_s": rerun_s,
        "inspect_verify_s": inspect_s,
        "export_coco_s": export_s,
        "total_s": first_s + rerun_s + inspect_s + export_s,
        "annotated": first.annotated,
        "carried_on_rerun": rerun.carried,
        "shards": len(first.manifest.shards),
        "files_listed": len(first.manifest.files()),
    }


def store_costs(root: str, repeat: int) -> dict[str, float]:
    """Milliseconds per call of the store's per-run steps on a scratch dataset under ``root``."""
    scratch = location(root)
    manifest = require_manifest(root)
    shard = ShardInfo("annotations/part-bench-00000.parquet", 1, 1, {}, "0" * 64)
    costs: dict[str, list[float]] = {"lock_take_and_release": [], "publish": [], "journal_shard": [], "check": []}
    for index in range(repeat):
        lock = OutputLock(scratch / "bench-lock", f"bench-{index}")
        costs["lock_take_and_release"].append(timed(lambda lock=lock: (lock.acquire(), lock.release()))[0])
        numbered = replace(manifest, version=index + 1)
        costs["publish"].append(timed(lambda m=numbered: publish(scratch / "bench-publish", m))[0])
        journal = RunJournal(scratch / "bench-journal", f"bench-{index}")
        costs["journal_shard"].append(timed(lambda j=journal: j.record(shard, _ids_table()))[0])
        costs["check"].append(timed(lambda: scratch.check_writable_folder())[0])
    for folder in ("bench-lock", "bench-publish", "bench-journal"):
        (scratch / folder).delete_tree()
    return {f"{name}_ms": 1000 * sum(values) / len(values) for name, values in costs.items()}


def _ids_table() -> Any:
    import pyarrow as pa

    return pa.table({"image_id": [f"{i:064x}" for i in range(1000)]})


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench object_store", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="number of images (default 200)")
    parser.add_argument("--profile", default="offline", help="profile name or YAML path (default offline)")
    parser.add_argument("--repeat", type=int, default=20, help="calls per store step measured (default 20)")
    parser.add_argument(
        "--s3-first", action="store_true", help="run the S3 side first (on a shared machine, swap to see the noise)"
    )
    parser.add_argument(
        "--workers", type=int, default=len(os.sched_getaffinity(0)), help="cores for the runs (default: all)"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> dict[str, Any]:
    from tests.support.s3_server import new_bucket, s3_server

    args = parse(argv)
    config = scaled_config(load_config(args.profile), args.workers)
    inputs = [str(p) for p in bench_images(args.images)]
    folder = RUNS / "object_store"
    shutil.rmtree(folder, ignore_errors=True)
    print(f"object_store: {len(inputs)} images, profile {args.profile}, {args.workers} workers", file=sys.stderr)
    with s3_server(), local_ray(args.workers):
        bucket = new_bucket()
        sides = {
            "local": lambda: side("local", str(folder / "corpus"), str(folder / "coco"), inputs, config),
            "s3": lambda: side("s3", f"{bucket}/corpus", f"{bucket}/coco", inputs, config),
        }
        order = ["s3", "local"] if args.s3_first else ["local", "s3"]
        done = {name: sides[name]() for name in order}
        local, remote = done["local"], done["s3"]
        costs = {
            "local": store_costs(str(folder / "corpus"), args.repeat),
            "s3": store_costs(f"{bucket}/corpus", args.repeat),
        }
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "images": len(inputs),
        "profile": args.profile,
        "workers": args.workers,
        "order": order,
        "local": local,
        "s3": remote,
        "s3_over_local": {
            key: remote[key] / local[key]
            for key in ("run_s", "rerun_s", "inspect_verify_s", "export_coco_s", "total_s")
        },
        "store_step_ms": costs,
        "s3_store_overhead_per_run_ms": costs["s3"]["lock_take_and_release_ms"]
        + costs["s3"]["publish_ms"]
        + costs["s3"]["check_ms"]
        + remote["shards"] * costs["s3"]["journal_shard_ms"],
    }
