"""Driver memory: the driver's peak RSS at a small and a ten times larger run, and planning at 1,000,000 images.

Only the driver process counts (Ray's raylet, workers and object store are other processes). Each
measurement runs in its own fresh process, so one run's peak cannot hide in another's:

- **runs**: the filters-only profile (the offline profile's filters, no specialists) over 2,000 and
  20,000 tiny PNGs (``bench.ceiling``'s), on a local Ray with every core; the driver's RSS sampled
  every 50 ms (peak, and its level once Ray is up: the part the run itself adds). Target: peak at
  20,000 <= 1.15x peak at 2,000. ``--semantic``: with curation's semantic pass on (the tests' tiny random CLIP,
  minimum cosine 0.999), which embeds, searches and verifies in the work's partitions.
- **planning**: no pixels. 1,000,000 empty files named by a Parquet table of paths (how a FLD-5B-sized
  corpus is given), a synthetic probe index of them (2% second copies of an image, 0.5% quarantined, 1%
  of the images a near-duplicate of another by their measures, 20% too small for the ``min_side`` gate, as
  workers would write it, every file unchanged since) and a synthetic previous version holding 90% of the
  unique images that pass the gate, exact for the current stages, in shards of 1,000 rows. The engine's
  planning runs over them as a refresh does: discovery of the path table into an Arrow listing in URI ranges
  (``discover_ranges``: sorted on local disk, as a run of more than ``ray.plan_part_rows`` files does), the
  previous probe index
  read as the probe cache and the listing split by it (``split_by_cache``: every file stated and found
  unchanged), grouping the hits by content hash (``group_by_content``), the previous version's images and
  paths in the same id partitions with the paths of them this run saw (``previous_images_in_parts``), curation
  (``curate_parts``: gates and near-duplicate groups, the previous images preferred), carry-over planning
  (``plan_carry_over``) and the tombstones of the previous version's images that leave (``tombstones_in_parts``,
  as if every new image were written), all on the probe phase's image-id partitions; reported: each phase's
  seconds and the driver's peak RSS above its level before planning.
  ``--plan-changed-filter``: the last filter's fingerprint differs from the previous version's (a profile
  change), so every carried row is queued to re-filter instead.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

TARGET = 1.15
MIB = 1024**2
STATE = Path(__file__).resolve().parents[1] / ".state" / "bench"
RUNS = STATE / "runs" / "driver_memory"
PLAN = STATE / "plan-sim-v5"
SHARD_ROWS = 1000
DUPLICATE_EVERY = 50  # every 50th file is a second copy of the one before it
QUARANTINE_EVERY = 200  # and every 200th (never a copy) is quarantined
CARRIED_SHARE = 0.9
NEAR_DUPLICATE_EVERY = 100  # and every 100th distinct image is a near-duplicate of the one before (3 bits apart)
GATED_EVERY = 5  # and every 5th distinct image is 12 x 9 pixels: skipped by the min_side gate (as in the previous one)
FILES_PER_FOLDER = 10_000


class RssPeak:
    """``with RssPeak() as peak:``: this process's resident set, sampled every ``interval`` seconds, and its
    anonymous part (``heap``: the process's own allocations; the resident set also counts mapped files and the
    pages of Ray's object store, shared memory, it touched)."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval, self.start_mib, self.peak_mib, self.phase_peak_mib = interval, 0.0, 0.0, 0.0
        self.heap_start_mib, self.heap_peak_mib, self.phase_heap_peak_mib = 0.0, 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> float:
        rss, heap = resident_and_anonymous_mib()
        self.peak_mib, self.phase_peak_mib = max(self.peak_mib, rss), max(self.phase_peak_mib, rss)
        self.heap_peak_mib, self.phase_heap_peak_mib = (
            max(self.heap_peak_mib, heap),
            max(self.phase_heap_peak_mib, heap),
        )
        return rss

    def phase_growth(self) -> float:
        """The peak since the previous call (or the start) above the start; the next phase starts now."""
        return self.phase_growths()[0]

    def phase_growths(self) -> tuple[float, float]:
        """:meth:`phase_growth` of the resident set and of the heap."""
        self.sample()
        growth, heap = self.phase_peak_mib - self.start_mib, self.phase_heap_peak_mib - self.heap_start_mib
        self.phase_peak_mib = self.phase_heap_peak_mib = 0.0
        return growth, heap

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> RssPeak:
        self.start_mib = self.peak_mib = self.sample()
        self.heap_start_mib = self.heap_peak_mib
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def resident_and_anonymous_mib() -> tuple[float, float]:
    """This process's resident set and its anonymous memory, in MiB (Linux: ``/proc/self/smaps_rollup``)."""
    fields = {}
    with open("/proc/self/smaps_rollup") as rollup:
        for line in rollup:
            name, _, value = line.partition(":")
            if name in ("Rss", "Anonymous"):
                fields[name] = int(value.split()[0]) / 1024
    return fields["Rss"], fields["Anonymous"]


def max_rss_mib() -> float:
    """This process's lifetime peak RSS as the kernel counted it (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- runs --------------------------------------------------------------------------------------


def measure_run(images: int, profile: str, part_rows: int | None = None, semantic: bool = False) -> dict[str, Any]:
    """One filters-only run over ``images`` tiny PNGs, in this (fresh) process; ``part_rows``: its
    ``ray.plan_part_rows`` (the profile's when None); ``semantic``: with curation's semantic pass on the tiny CLIP
    (:func:`tiny_clip`)."""
    import shutil

    from bench.ceiling import filters_only, tiny_pngs
    from bench.cluster import local_ray
    from engine.run import RunRequest, run_pipeline

    folder, output = tiny_pngs(images), RUNS / f"out-{images}"
    shutil.rmtree(output, ignore_errors=True)
    config = filters_only(profile)
    if part_rows is not None:
        config = replace(config, ray=replace(config.ray, plan_part_rows=part_rows))
    if semantic:
        settings = replace(config.curation.semantic, enabled=True, model=str(tiny_clip()), min_cosine=SEMANTIC_COSINE)
        config = replace(config, curation=replace(config.curation, semantic=settings))
    with local_ray(len(os.sched_getaffinity(0))), RssPeak() as rss:
        started = time.perf_counter()
        request = RunRequest((str(folder),), output, config, full=True, progress_bars=False)
        result = run_pipeline(request, lambda _: None)
        seconds = time.perf_counter() - started
    shutil.rmtree(output, ignore_errors=True)
    return {
        "images": images,
        "plan_part_rows": config.ray.plan_part_rows,
        "annotated": result.annotated,
        "skipped": result.skipped,
        "semantic": semantic,
        "seconds": seconds,
        "driver_peak_mib": rss.peak_mib,
        "driver_at_start_mib": rss.start_mib,
        "driver_growth_mib": rss.peak_mib - rss.start_mib,
        "driver_heap_growth_mib": rss.heap_peak_mib - rss.heap_start_mib,
        "driver_max_rss_mib": max_rss_mib(),
    }


SEMANTIC_COSINE = 0.999  # the tiny random CLIP sees 32 x 32 pixels: most generated images are far closer


def tiny_clip() -> Path:
    """The tests' tiny random-init CLIP (``tests/support/tiny_models/clip.py``), built once under the bench's state."""
    folder = STATE / "tiny-clip"
    if not (folder / "config.json").exists():
        from tests.support.tiny_models.clip import build_tiny_clip

        build_tiny_clip(folder)
    return folder


# -- planning ----------------------------------------------------------------------------------


def image_id(index: int) -> str:
    return hashlib.sha256(index.to_bytes(8, "little")).hexdigest()


def prepare_planning(images: int, folder: Path, profile: str) -> None:
    """Write the synthetic probe index and previous version for ``images`` files into ``folder`` (once)."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench.ceiling import filters_only
    from engine.execute.plan_stages import plan_stages
    from engine.ingest.probe import PROBE_INDEX_SCHEMA
    from engine.refresh.incremental import StagePlan
    from schemas.arrow import ANNOTATION_SCHEMA
    from schemas.records import ImageRecord

    marker = folder / ".complete"
    if marker.exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "annotations").mkdir(parents=True)
    uris = [str(folder / "images" / f"{i // FILES_PER_FOLDER:04d}" / f"{i:07d}.jpg") for i in range(images)]
    mtimes = [1_700_000_000_000_000_000 + i for i in range(images)]
    write_files(uris, mtimes)
    pq.write_table(pa.table({"path": uris}), folder / "paths.parquet")
    content = [i - 1 if i % DUPLICATE_EVERY == DUPLICATE_EVERY - 1 else i for i in range(images)]
    bad = [i % QUARANTINE_EVERY == QUARANTINE_EVERY // 2 for i in range(images)]
    ids = [None if bad[i] else image_id(content[i]) for i in range(images)]
    probes = {
        "source_uri": uris,
        "size_bytes": [20_000 + i % 1000 for i in range(images)],
        "object_size": [0] * images,  # the files are empty: their size and mtime are what the cache compares
        "mtime_ns": mtimes,
        "checked_ns": [1_700_000_100_000_000_000] * images,
        "image_id": ids,
        "width": [None if b else 640 for b in bad],
        "height": [None if b else 480 for b in bad],
        "format": [None if b else "jpeg" for b in bad],
        "reason": ["undecodable" if b else None for b in bad],
        "detail": ["synthetic" if b else None for b in bad],
    }
    table = pa.table(probes).cast(_subset(PROBE_INDEX_SCHEMA, probes))
    table = table.append_column("measures", synthetic_measures(content, bad))
    pq.write_table(table, folder / "probes-part.parquet")
    copies: dict[str, list[str]] = {}
    for uri, content_id in zip(uris, ids, strict=True):
        if content_id is not None:
            copies.setdefault(content_id, []).append(uri)
    gated = {image_id(c) for c in range(1, max(content, default=0) + 1, GATED_EVERY)}
    unique = sorted(copies)
    passing = [i for i in unique if i not in gated]  # the previous version skipped the others too
    carried = passing[: int(len(passing) * CARRIED_SHARE)]
    fingerprints = StagePlan([s.spec() for s in plan_stages(filters_only(profile))]).fingerprints
    shards = []
    for start in range(0, len(carried), SHARD_ROWS):
        rows = [
            ImageRecord(i, copies[i][0], 640, 480, "jpeg", copies[i], stages=dict(fingerprints)).to_row()
            for i in carried[start : start + SHARD_ROWS]
        ]
        path = f"annotations/part-previous-{start // SHARD_ROWS:05d}.parquet"
        pq.write_table(pa.Table.from_pylist(rows, schema=ANNOTATION_SCHEMA), folder / path)
        shards.append({"path": path, "rows": len(rows), "bytes": (folder / path).stat().st_size})
    facts = {"files": images, "unique": len(unique), "carried": len(carried), "shards": shards}
    (folder / "previous.json").write_text(json.dumps(facts))
    marker.touch()


def write_files(paths: list[str], mtimes: list[int]) -> None:
    """Empty files at ``paths`` with the given mtimes (what the synthetic probe index says of them)."""
    for path, mtime in zip(paths, mtimes, strict=True):
        folder = os.path.dirname(path)
        if not os.path.isdir(folder):
            os.makedirs(folder)
        with open(path, "wb"):
            pass
        os.utime(path, ns=(mtime, mtime))


def synthetic_measures(content: list[int], bad: list[bool]) -> Any:
    """Curation's measures for each file: a 640x480 image that passes the gates, with random 64-bit hashes
    per content, except that every ``NEAR_DUPLICATE_EVERY``-th content is 3 bits from the one before and every
    ``GATED_EVERY``-th (from the second) is 12x9, below the ``min_side`` gate."""
    import numpy as np
    import pyarrow as pa

    from schemas.arrow import IMAGE_MEASURES

    rng = np.random.default_rng(14)
    count = max(content, default=-1) + 1
    hashes = {kind: rng.integers(0, 2**64, count, dtype=np.uint64) for kind in ("phash", "dhash")}
    near = np.arange(NEAR_DUPLICATE_EVERY - 2, count, NEAR_DUPLICATE_EVERY)  # -1 would be a second copy's content
    for kind in hashes:
        hashes[kind][near] = hashes[kind][near - 1] ^ np.uint64(0b111)
    at = np.array(content)
    files = len(content)
    small = at % GATED_EVERY == 1
    fields = {
        "width": pa.array(np.where(small, 12, 640).astype(np.int32)),
        "height": pa.array(np.where(small, 9, 480).astype(np.int32)),
        "aspect_ratio": pa.array(np.full(files, 640 / 480, np.float32)),
        "phash": pa.array(hashes["phash"][at]),
        "dhash": pa.array(hashes["dhash"][at]),
        "sharpness": pa.array(np.full(files, 300, np.float32)),
        "brightness": pa.array(np.full(files, 120, np.float32)),
        "contrast": pa.array(np.full(files, 50, np.float32)),
        "single_colour_fraction": pa.array(np.full(files, 0.2, np.float32)),
    }
    mask = pa.array(bad)  # a quarantined file has no measures
    return pa.StructArray.from_arrays(list(fields.values()), names=list(fields), mask=mask).cast(IMAGE_MEASURES)


def _subset(schema: Any, columns: dict[str, Any]) -> Any:
    import pyarrow as pa

    return pa.schema([schema.field(name) for name in columns])


def previous_probe_parts(folder: Path, config: Any, rows: int) -> list[Any]:
    """The synthetic probe index as a run writes it (parts of ``rows`` rows sorted by URI, the writer's row
    groups), written once for each part size next to ``probes-part.parquet``."""
    import pyarrow.parquet as pq

    from engine.ingest.probe_parts import index_writer
    from engine.store.location import location
    from engine.store.writer import ShardInfo, write_shard

    listed = folder / f"probe-parts-v2-{rows}.json"
    if listed.exists():
        return [ShardInfo.from_dict(part) for part in json.loads(listed.read_text())]
    index = pq.read_table(folder / "probes-part.parquet").sort_by("source_uri")
    root, name = location(folder), f"probes/part-previous-{rows}-{{:05d}}.parquet"
    parts = [
        write_shard(index.slice(start, rows), root, name.format(number), index_writer(config.writer), {})
        for number, start in enumerate(range(0, index.num_rows, rows))
    ]
    listed.write_text(json.dumps([part.to_dict() for part in parts]))
    return parts


def measure_planning(
    folder: Path,
    profile: str,
    ray_search: bool = True,
    ray_parts: bool = True,
    ray_settings: dict[str, int] | None = None,
    changed_filter: bool = False,
) -> dict[str, Any]:
    """The engine's planning over the synthetic probe index and previous version, in this (fresh) process;
    ``ray_parts``: the probe phase in parts on Ray (as a run of this size does), else in one part here;
    ``ray_settings``: ``ray.plan_part_rows`` and ``ray.plan_min_piece_rows`` other than the profile's;
    ``changed_filter``: the last filter's fingerprint changed, so every row the previous version holds is
    queued to re-filter."""

    from bench.ceiling import filters_only
    from engine.execute.annotate_input import RowsToAnnotate, ids_in_partitions
    from engine.execute.near_dup_search import DISTRIBUTE_MIN_IMAGES, pair_search
    from engine.execute.plan_stages import plan_stages
    from engine.execute.probe_phase import ProbePlan, probe_in_parts
    from engine.execute.sink import LATE
    from engine.ingest.curation import curate_parts
    from engine.ingest.discover import discover_ranges
    from engine.ingest.probe import probe_settings
    from engine.partitions.keys import part_rows_for
    from engine.partitions.tasks import IN_PROCESS, ON_RAY
    from engine.refresh.carryover import Candidate, plan_carry_over
    from engine.refresh.incremental import StagePlan
    from engine.refresh.previous_parts import previous_images_in_parts, tombstones_in_parts
    from engine.store.writer import ShardInfo

    config = filters_only(profile)
    config = replace(config, ray=replace(config.ray, **(ray_settings or {})))
    specs = [s.spec() for s in plan_stages(config)]
    if changed_filter:
        specs[-1] = replace(specs[-1], fingerprint=f"{specs[-1].fingerprint}-changed")
    stage_plan = StagePlan(specs)
    facts = json.loads((folder / "previous.json").read_text())
    part_rows = part_rows_for(facts["files"], config.ray.plan_part_rows, config.ray.plan_min_piece_rows)  # as a run
    candidates = [Candidate(ShardInfo.from_dict(shard)) for shard in facts["shards"]]
    ray_search = ray_search and facts["unique"] >= DISTRIBUTE_MIN_IMAGES
    ray_parts = ray_parts and facts["files"] > part_rows  # one part runs here, as in a run
    previous_index = previous_probe_parts(folder, config, part_rows)
    if ray_search or ray_parts:  # as a run of this size does: Ray is up, and the parts and the search run on it
        import ray

        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    with RssPeak() as rss:
        started, cpu_started = time.perf_counter(), time.process_time()
        paths = [str(folder / "paths.parquet")]
        listing = discover_ranges(paths, config.ingest.extensions, None, config.ray.plan_part_rows)  # as a run
        discovered, (discovery_growth, discovery_heap) = time.perf_counter(), rss.phase_growths()
        # A refresh splits the listing against the previous version's probe index; every file is a hit here.
        rows = part_rows if ray_parts else facts["files"] + 1
        plan = ProbePlan(listing, previous_index, folder, "bench-plan", probe_settings(config.ingest), config.writer)
        found = probe_in_parts(replace(plan, rows_per_part=rows), lambda: None, ON_RAY if ray_parts else IN_PROCESS)
        del listing, plan
        work, quarantined = found.work, found.quarantined  # the work table stays in its partitions
        grouped, (grouping_growth, grouping_heap) = time.perf_counter(), rss.phase_growths()
        earlier = previous_images_in_parts(folder, [c.shard for c in candidates], found.seen_parts, rows)
        read_previous, (previous_growth, previous_heap) = time.perf_counter(), rss.phase_growths()
        search = pair_search(work.rows if ray_search else 0, lambda: None)
        curated = curate_parts(work, config.curation, earlier.images, search=search)
        curated_at, (curation_growth, curation_heap) = time.perf_counter(), rss.phase_growths()
        carry = plan_carry_over(
            folder, candidates, curated.work, stage_plan, config.writer, "bench-plan", rows_per_batch=rows
        )
        carried_at, (carry_growth, carry_heap) = time.perf_counter(), rss.phase_growths()
        # As if every new image were written: the previous version's images neither carried nor skipped leave it.
        sent = ids_in_partitions([RowsToAnnotate.of(carry.new)], len(carry.new.handles))
        late = LATE.empty_table()
        tombstones = tombstones_in_parts(earlier, carry.carried, sent, late, curated.skipped)
        seconds, (tombstone_growth, tombstone_heap) = time.perf_counter() - started, rss.phase_growths()
        cpu_s = time.process_time() - cpu_started
    return {
        "files": facts["files"],
        "unique": work.rows,
        "quarantined": quarantined.rows,
        "skipped": curated.tally.rows,
        "near_duplicates": curated.tally.near_duplicates,
        "carried": carry.carried_count,
        "to_refilter": carry.rerun_filters.rows,
        "to_reannotate": carry.rerun_pixels.rows,
        "new": carry.new.rows,
        "tombstoned": tombstones.rows,
        "expected_carried": facts["carried"],
        "cache_hits": found.cached,
        "cache_misses": found.hashed,
        "probe_parts": "ray tasks" if ray_parts else "driver",
        "part_rows": rows,
        "id_partitions": len(work.handles),
        "discovery_s": discovered - started,
        # the driver's peak in each of the listing's phases, above its level before planning
        "discovery_growth_mib": discovery_growth,
        "probe_phase_growth_mib": grouping_growth,  # cache split and grouping by content
        "grouping_growth_mib": grouping_growth,
        "previous_images_growth_mib": previous_growth,
        "curation_growth_mib": curation_growth,
        "carry_over_growth_mib": carry_growth,
        "tombstones_growth_mib": tombstone_growth,
        "near_duplicate_search": "ray tasks" if search.splits_per_key > 1 else "driver",
        "probe_phase_s": grouped - discovered,
        "grouping_s": grouped - discovered,
        "previous_images_s": read_previous - grouped,
        "curation_s": curated_at - read_previous,
        "carry_over_s": carried_at - curated_at,
        "tombstones_s": started + seconds - carried_at,
        "planning_s": seconds,
        "planning_cpu_s": cpu_s,  # on a shared machine wall time also counts other users' work
        "driver_before_mib": rss.start_mib,
        "driver_peak_mib": rss.peak_mib,
        "driver_growth_mib": rss.peak_mib - rss.start_mib,
        # the same, of the driver's heap (anonymous memory: without the object store's pages it mapped)
        "heap_growth_by_phase_mib": {
            "discovery": discovery_heap,
            "probe_phase": grouping_heap,
            "previous_images": previous_heap,
            "curation": curation_heap,
            "carry_over": carry_heap,
            "tombstones": tombstone_heap,
        },
        "driver_heap_growth_mib": rss.heap_peak_mib - rss.heap_start_mib,
    }


# -- the scenario --------------------------------------------------------------------------------


def in_child(flag: str, value: str, profile: str, *extra: str) -> dict[str, Any]:
    """Run one measurement in a fresh Python process; its JSON result."""
    command = [sys.executable, "-m", "bench.driver_memory", flag, value, "--profile", profile, *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench driver_memory", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=(2000, 20_000), help="small and large run")
    parser.add_argument("--plan-images", type=int, default=1_000_000, help="files in the planning simulation")
    parser.add_argument("--profile", default="offline", help="profile whose filters run (default offline)")
    parser.add_argument(
        "--run-part-rows",
        type=int,
        help="the runs' ray.plan_part_rows (default: the profile's, so both sizes run in one part; smaller makes "
        "them run in parts on Ray, as a run larger than one part does)",
    )
    parser.add_argument("--skip-runs", action="store_true", help="only the planning simulation")
    parser.add_argument(
        "--semantic", action="store_true", help="the runs with curation's semantic pass on (the tests' tiny CLIP)"
    )
    parser.add_argument("--skip-planning", action="store_true", help="only the runs")
    parser.add_argument(
        "--search",
        choices=("ray", "driver"),
        default="ray",
        help="where the planning's near-duplicate search runs (ray: as a run of that size does)",
    )
    parser.add_argument(
        "--probe-parts",
        choices=("ray", "driver"),
        default="ray",
        help="where the planning's probe phase runs (ray: in parts as Ray tasks, as a run of that size does)",
    )
    parser.add_argument("--plan-part-rows", type=int, help="the planning's ray.plan_part_rows (default: the profile's)")
    parser.add_argument(
        "--plan-min-piece-rows",
        type=int,
        help="the planning's ray.plan_min_piece_rows (default: the profile's; 1: none)",
    )
    parser.add_argument(
        "--plan-changed-filter",
        action="store_true",
        help="the planning's last filter changed since the previous version: every carried row is re-filtered",
    )
    parser.add_argument("--child-run", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-plan", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str]) -> dict[str, Any]:
    from bench.ceiling import tiny_pngs

    args = parse(argv)
    result: dict[str, Any] = {"profile": args.profile, "target": TARGET}
    if not args.skip_runs:
        small, large = args.sizes
        for size in (small, large):
            tiny_pngs(size)  # generated here, not inside the measured process
            part_rows = () if args.run_part_rows is None else ("--run-part-rows", str(args.run_part_rows))
            if args.semantic:
                tiny_clip()  # built here, not inside the measured process
                part_rows += ("--semantic",)
            result[f"run_{size}"] = in_child("--child-run", str(size), args.profile, *part_rows)
            print(f"  {size} images: driver peak {result[f'run_{size}']['driver_peak_mib']:.0f} MiB", file=sys.stderr)
        peak = {size: result[f"run_{size}"]["driver_peak_mib"] for size in (small, large)}
        growth = {size: result[f"run_{size}"]["driver_growth_mib"] for size in (small, large)}
        heap = {size: result[f"run_{size}"]["driver_heap_growth_mib"] for size in (small, large)}
        result["peak_ratio"] = peak[large] / peak[small]
        result["growth_per_1000_images_mib"] = (growth[large] - growth[small]) / (large - small) * 1000
        result["heap_growth_per_1000_images_mib"] = (heap[large] - heap[small]) / (large - small) * 1000
    if not args.skip_planning:
        folder = PLAN / f"n{args.plan_images}"
        started = time.perf_counter()
        prepare_planning(args.plan_images, folder, args.profile)
        result["plan_prepare_s"] = time.perf_counter() - started
        extra = ["--search", args.search, "--probe-parts", args.probe_parts]
        for flag, value in (
            ("--plan-part-rows", args.plan_part_rows),
            ("--plan-min-piece-rows", args.plan_min_piece_rows),
        ):
            extra += [] if value is None else [flag, str(value)]
        extra += ["--plan-changed-filter"] if args.plan_changed_filter else []
        planning = in_child("--child-plan", str(folder), args.profile, *extra)
        result[f"planning_{args.plan_images}"] = planning
    result["load_average"] = os.getloadavg()[0]
    return result


if __name__ == "__main__":
    options = parse(sys.argv[1:])
    if options.child_run is not None:
        measured = measure_run(options.child_run, options.profile, options.run_part_rows, options.semantic)
    elif options.child_plan is not None:
        ray_parts = options.probe_parts == "ray"
        settings = {"plan_part_rows": options.plan_part_rows, "plan_min_piece_rows": options.plan_min_piece_rows}
        settings = {name: value for name, value in settings.items() if value is not None}
        folder = Path(options.child_plan)
        measured = measure_planning(
            folder, options.profile, options.search == "ray", ray_parts, settings, options.plan_changed_filter
        )
    else:
        measured = main(sys.argv[1:])
    print(json.dumps(measured))
