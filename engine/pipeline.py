"""The engine's main job: images in, versioned annotation shards out, on Ray Data.

Lock the output -> probe (hash and decode-check every file not in the probe cache) -> plan
(duplicates once, quarantine the bad, carry over rows of the previous version and of killed runs,
queue rows that need only some stages again: see ``engine/incremental.py``) -> annotate (one
streaming ``map_batches`` per stage: model stages in actor pools, the rest as tasks; a stage
skips rows that already carry its fingerprint) -> write shards, journaling each -> write
quarantine, tombstones and the probe index -> publish the manifest last -> clean up journals.
Ray starts only when there is something to probe or annotate.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from engine.carryover import Candidate, plan_carry_over, previous_paths
from engine.config import EngineConfig, StageConfig
from engine.counts import merge_counts, value_counts
from engine.image_bytes import INGEST_STAGE, attach_image_bytes
from engine.incremental import FILTERS, StagePlan, StageSpec
from engine.ingest import ProbedFile, discover, plan_work, probe_file
from engine.journal import RunJournal, UnfinishedRun, clean_up_runs, unfinished_runs
from engine.manifest import Manifest, all_manifests, publish
from engine.output_lock import OutputLock
from engine.probe_cache import PROBE_INDEX_SCHEMA, load_probe_cache, probed_from_row, split_by_cache
from engine.ray_session import ray_session
from engine.stage_groups import StageGroup, group_stages
from engine.stage_runner import StageChainWorker, run_step
from engine.tombstones import TOMBSTONE_SCHEMA, find_tombstones
from engine.typed_config import ConfigError
from engine.weights import describe_missing
from engine.writer import ShardInfo, ShardWriter, write_table_atomically
from schemas.arrow import ANNOTATION_SCHEMA, QUARANTINE_SCHEMA, SCHEMA_VERSION
from schemas.records import ImageRecord
from schemas.stage import Resources, WeightsNotFound

MAX_INPUT_BLOCKS = 1000
LOADER_CPUS = 0.25
# Filter reruns of at most this many rows run in this process when nothing else needs Ray.
IN_PROCESS_ROWS = 2000
# New files of at most this many bytes in all are probed in this process: starting Ray's probe tasks
# costs seconds of CPU, more than hashing and decoding a few dozen MB (a small refresh, a sample run).
IN_PROCESS_PROBE_BYTES = 64 * 1024**2
PIXEL_FREE_BLOCK_ROWS = 256
Progress = Callable[[str], None]


@dataclass(frozen=True)
class RunRequest:
    inputs: tuple[str, ...]
    output: Path
    config: EngineConfig
    address: str | None = None
    limit: int | None = None
    full: bool = False
    progress_bars: bool = True


@dataclass(frozen=True)
class RunResult:
    """``annotated``: images that went through specialists (new ones and ``reannotated`` ones)."""

    manifest: Manifest
    files: int
    annotated: int
    carried: int
    quarantined: int
    seconds: float
    reannotated: int = 0
    refiltered: int = 0
    resumed: int = 0
    tombstoned: int = 0
    probe_cached: int = 0


@dataclass(frozen=True)
class PlannedStage:
    """A configured stage with its kind (specialists or filters), fingerprint and model identity."""

    config: StageConfig
    kind: str
    fingerprint: str
    model: str
    holds_model: bool
    requires: frozenset[str] = frozenset()
    produces: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def resources(self) -> Resources:
        return self.config.resources

    def spec(self) -> StageSpec:
        return StageSpec(self.config.name, self.kind, self.fingerprint, self.requires, self.produces)


def plan_stages(config: EngineConfig) -> list[PlannedStage]:
    """Instantiate (without loading) every stage; check weights and ordering before any work starts."""
    planned, produced, missing = [], set(), []
    for kind, stage_configs in (("specialists", config.specialists), ("filters", config.filters)):
        for stage_config in stage_configs:
            stage = stage_config.create(kind)
            needs = set(getattr(stage, "requires", ()))
            if needs - produced:
                raise ConfigError(
                    f"{kind} stage {stage.name!r} needs {sorted(needs - produced)} from an earlier stage; "
                    "put a specialist that produces them before it"
                )
            produced |= set(getattr(stage, "produces", ()))
            if hasattr(stage, "check_weights"):
                check = stage.check_weights()
                if not check.found:
                    missing.append(check)
            holds_model = kind == "specialists" or bool(getattr(stage, "holds_model", False))
            model = getattr(stage, "model_id", "") if kind == "specialists" else ""
            planned.append(
                PlannedStage(
                    stage_config,
                    kind,
                    stage.fingerprint(),
                    model,
                    holds_model,
                    frozenset(getattr(stage, "requires", ())),
                    frozenset(getattr(stage, "produces", ())),
                )
            )
    if missing:
        raise WeightsNotFound(describe_missing(missing))
    return planned


def _probe_batch(batch: pa.Table, max_pixels: int, max_bytes: int) -> pa.Table:
    """Probe each file; its size and mtime are taken before reading, for the next run's probe cache."""
    rows = []
    for uri in batch.column("source_uri").to_pylist():
        checked_ns = time.time_ns()
        try:
            mtime_ns = os.stat(uri).st_mtime_ns
        except OSError:
            mtime_ns = None
        rows.append({**asdict(probe_file(uri, max_pixels, max_bytes)), "mtime_ns": mtime_ns, "checked_ns": checked_ns})
    return pa.Table.from_pylist(rows, schema=PROBE_INDEX_SCHEMA)


_TASK_STAGES: dict[tuple[str, str], Any] = {}
StageConfigs = tuple[tuple[StageConfig, str], ...]


def _task_stage(stage_config: StageConfig, kind: str) -> Any:
    """One set-up stage per worker process and configuration (keyed by repr: options may hold dicts)."""
    key = (kind, repr(stage_config))
    if key not in _TASK_STAGES:
        stage = stage_config.create(kind)
        stage.setup()
        _TASK_STAGES[key] = stage
    return _TASK_STAGES[key]


def _run_task_group(batch: pa.Table, stages: StageConfigs, max_pixels: int, read_bytes: bool | None) -> pa.Table:
    return run_step([_task_stage(config, kind) for config, kind in stages], batch, max_pixels, read_bytes)


def _named_worker(group_name: str) -> type:
    """The actor class of one stage group, named after it: Ray's process titles and progress bars then
    say ``MapBatches(ocr+haar)`` rather than one class name for every stage."""
    return type(group_name, (StageChainWorker,), {"__qualname__": group_name})


def _named_task(group_name: str) -> Callable[..., pa.Table]:
    def run(batch: pa.Table, **kwargs: Any) -> pa.Table:
        return _run_task_group(batch, **kwargs)

    run.__name__ = run.__qualname__ = group_name
    return run


def _stage_configs(group: StageGroup) -> StageConfigs:
    return tuple((stage.config, stage.kind) for stage in group.stages)  # type: ignore[attr-defined]


def _check_capacity(groups: list[StageGroup]) -> None:
    """Fail clearly when the stages cannot all run at once: Ray Data would otherwise wait forever.

    Actor pools hold their CPUs for the whole run, so beside them there must remain room for the
    largest task (the byte loader or a filter task), or the stream deadlocks.
    """
    import ray

    resources = ray.cluster_resources()
    largest_task = max([LOADER_CPUS] + [g.resources.num_cpus for g in groups if not g.holds_model])
    for name, total in (("CPU", "num_cpus"), ("GPU", "num_gpus")):
        demand = sum(getattr(g.resources, total) * g.resources.pool_size for g in groups if g.holds_model)
        needed = demand + (largest_task if name == "CPU" else 0.0)
        available = resources.get(name, 0.0)
        if needed > available + 1e-9:
            raise ConfigError(
                f"the stages need {needed:g} {name}s at once (actor pools {demand:g}"
                + (f" + the largest task {largest_task:g}" if name == "CPU" else "")
                + f") but Ray has {available:g}; lower resources.{total} or pool_size in the profile, "
                "or give Ray more (ray.num_cpus / a cluster)"
            )


def _blocks(table: pa.Table, rows_per_block: int) -> list[pa.Table]:
    count = min(MAX_INPUT_BLOCKS, max(1, table.num_rows // max(1, rows_per_block)))
    size = -(-table.num_rows // count)
    return [table.slice(start, size) for start in range(0, table.num_rows, size)] or [table]


def build_dataset(rows: pa.Table, stages: list[PlannedStage], config: EngineConfig, read_pixels: bool = True) -> Any:
    """The lazy Ray Data pipeline over ``rows`` (annotation schema): attach bytes, then one ``map_batches``
    per stage. Without ``read_pixels`` no file is read (for stages that do not need pixels)."""
    import ray
    from ray.data import ActorPoolStrategy

    # Blocks are the streaming unit; without file reads, larger blocks cost less scheduling.
    ds = ray.data.from_arrow(_blocks(rows, config.ray.decode_batch_size if read_pixels else PIXEL_FREE_BLOCK_ROWS))
    groups = group_stages(stages, config.ray.fuse_cpu_stages)
    if not groups:
        return ds.map_batches(
            attach_image_bytes, fn_kwargs={"read": read_pixels}, batch_format="pyarrow", num_cpus=LOADER_CPUS
        )
    max_pixels = config.ingest.max_pixels
    for position, group in enumerate(groups):
        # The first step reads each image's bytes where it decodes them: no loader processes, one hop less.
        read_bytes = read_pixels if position == 0 else None
        arguments = {"stages": _stage_configs(group), "max_pixels": max_pixels, "read_bytes": read_bytes}
        resources = group.resources
        common: dict[str, Any] = {
            "batch_format": "pyarrow",
            "batch_size": resources.batch_size,
            "num_cpus": resources.num_cpus,
        }
        if resources.num_gpus:
            common["num_gpus"] = resources.num_gpus
        if group.holds_model:
            ds = ds.map_batches(
                _named_worker(group.name),
                fn_constructor_kwargs=arguments,
                compute=ActorPoolStrategy(size=resources.pool_size),
                **common,
            )
        else:
            ds = ds.map_batches(
                _named_task(group.name),
                fn_kwargs=arguments,
                **common,
            )
    return ds


def run_in_process(rows: pa.Table, stages: list[PlannedStage], config: EngineConfig) -> Iterator[pa.Table]:
    """The pixel-free stages over ``rows`` in this process (small filter reruns, where Ray would cost more)."""
    created = [stage.config.create(stage.kind) for stage in stages]
    for stage in created:
        stage.setup()
    for batch in _blocks(rows, PIXEL_FREE_BLOCK_ROWS):
        yield run_step(created, batch, config.ingest.max_pixels, read_bytes=False)


def _ingest_failure(row: dict[str, Any]) -> str | None:
    for error in row["errors"] or []:
        if error["stage"] == INGEST_STAGE:
            return error["message"]
    return None


def _quarantine_rows(probed: list[ProbedFile]) -> list[dict[str, Any]]:
    return [
        {
            "source_uri": p.source_uri,
            "image_id": p.image_id,
            "reason": p.reason,
            "detail": p.detail,
            "size_bytes": p.size_bytes,
        }
        for p in probed
    ]


def _new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def _count_quarantine(table: pa.Table) -> dict[str, int]:
    return {"total": table.num_rows, **value_counts(table.column("reason"))}


def _write_one(root: Path, folder: str, run_id: str, table: pa.Table, config: EngineConfig) -> ShardInfo:
    relative = f"{folder}/part-{run_id}.parquet"
    return ShardInfo(relative, table.num_rows, write_table_atomically(table, root / relative, config.writer))


class _LazyRay:
    """Starts Ray on first need, so a refresh with nothing to probe or annotate never starts it."""

    def __init__(self, stack: ExitStack, request: RunRequest, stages: list[PlannedStage]) -> None:
        self.stack, self.request, self.stages = stack, request, stages
        self.started = False

    def __call__(self) -> None:
        if not self.started:
            self.stack.enter_context(
                ray_session(self.request.config.ray, self.request.address, self.request.progress_bars)
            )
            _check_capacity(group_stages(self.stages, self.request.config.ray.fuse_cpu_stages))
            self.started = True


def _total_bytes(files: list[str]) -> int:
    total = 0
    for path in files:
        with suppress(OSError):  # probing reports it
            total += os.stat(path).st_size
    return total


def _probe_limits(config: EngineConfig) -> dict[str, int]:
    return {"max_pixels": config.ingest.max_pixels, "max_bytes": config.ingest.max_bytes}


def _probe_misses(files: list[str], config: EngineConfig) -> list[dict[str, Any]]:
    import ray

    probe = ray.data.from_items([{"source_uri": f} for f in files], override_num_blocks=max(1, min(len(files), 32)))
    return probe.map_batches(
        _probe_batch,
        fn_kwargs=_probe_limits(config),
        batch_format="pyarrow",
        batch_size=16,
        num_cpus=1,  # hashing and decoding fill a core; fewer concurrent tasks start fewer worker processes
    ).take_all()


class _Sink:
    """Writes annotated batches as journaled shards; rows that failed ingestion go to quarantine."""

    def __init__(self, writer: ShardWriter, progress: Progress) -> None:
        self.writer, self.progress = writer, progress
        self.late_quarantine: list[dict[str, Any]] = []
        self.written: set[str] = set()

    def drain(self, batches: Any, label: str, total: int) -> int:
        done = 0
        for batch in batches:
            failures = [_ingest_failure(row) for row in batch.select(["errors"]).to_pylist()]
            bad = [i for i, failure in enumerate(failures) if failure]
            for i in bad:
                row = batch.slice(i, 1).select(["source_uri", "image_id"]).to_pylist()[0]
                reason, _, detail = failures[i].partition(": ")  # type: ignore[union-attr]
                self.late_quarantine.append({**row, "reason": reason, "detail": detail, "size_bytes": None})
            if bad:
                batch = batch.filter(pa.array([not f for f in failures]))
            self.writer.write(batch.drop_columns(["image_bytes"]))
            self.written.update(batch.column("image_id").to_pylist())
            done += batch.num_rows
            self.progress(f"{label} {done}/{total} images")
        return done


def _resumable(runs: list[UnfinishedRun], request: RunRequest) -> list[Candidate]:
    """Shards of killed runs to offer for carry-over; under ``--full`` only those of a ``--full`` run of this config."""
    fingerprint = request.config.fingerprint()
    return [
        Candidate(shard, resumed=True)
        for run in runs
        if not request.full or (run.meta.get("full") and run.meta.get("config_fingerprint") == fingerprint)
        for shard in run.shards
    ]


def run_pipeline(request: RunRequest, progress: Progress = print) -> RunResult:
    """Annotate ``request.inputs`` into a new version of ``request.output``, holding its lock."""
    run_id = _new_run_id()
    with OutputLock(request.output, run_id):
        return _refresh(request, run_id, progress)


def _refresh(request: RunRequest, run_id: str, progress: Progress) -> RunResult:
    started = time.perf_counter()
    config, root = request.config, request.output
    files = discover(request.inputs, config.ingest.extensions)
    if request.limit is not None:
        files = files[: request.limit]
    stages = plan_stages(config)
    history = all_manifests(root)
    previous = history[-1] if history else None
    published = {m.run_id for m in history}
    unfinished = unfinished_runs(root, published)
    known_filters = {n for m in history for n, kind in m.stage_kinds.items() if kind == FILTERS}
    plan = StagePlan([s.spec() for s in stages], known_filters)
    journal = RunJournal(root, run_id)
    journal.start({"config_fingerprint": config.fingerprint(), "inputs": list(request.inputs), "full": request.full})
    progress(f"fld-engine: {len(files)} input files, {len(stages)} stages, output {root}")
    ingest_key = {"max_pixels": config.ingest.max_pixels, "max_bytes": config.ingest.max_bytes}

    with ExitStack() as stack:
        ensure_ray = _LazyRay(stack, request, stages)
        probe_started = time.perf_counter()
        cache = {} if request.full else load_probe_cache(root, previous, ingest_key)
        split = split_by_cache(files, cache)
        index_rows = list(split.hit_rows)
        if split.misses and _total_bytes(split.misses) <= IN_PROCESS_PROBE_BYTES:
            index_rows += _probe_batch(pa.table({"source_uri": split.misses}), **_probe_limits(config)).to_pylist()
        elif split.misses:
            ensure_ray()
            index_rows += _probe_misses(split.misses, config)
        probed = split.hits + [probed_from_row(row) for row in index_rows[len(split.hits) :]]
        probe_seconds = time.perf_counter() - probe_started
        work, quarantined = plan_work(probed)

        candidates = [] if request.full or previous is None else [Candidate(s) for s in previous.shards]
        candidates += _resumable(unfinished, request)
        carry = plan_carry_over(root, candidates, work, plan, config.writer, run_id, on_shard=journal.record)
        done_or_queued = carry.image_ids | carry.rerun_ids
        new_items = [item for item in work if item.image_id not in done_or_queued]
        progress(
            f"probed {len(files)} files ({len(split.hits)} from the probe cache) in {probe_seconds:.1f}s: "
            f"{len(work)} unique images, {len(quarantined)} quarantined, {len(carry.image_ids)} carried over "
            f"({carry.resumed} from killed runs), {carry.rerun_pixels.num_rows} to re-annotate, "
            f"{carry.rerun_filters.num_rows} to re-filter, {len(new_items)} new"
        )

        sink = _Sink(
            ShardWriter(root, "annotations", f"part-{run_id}", ANNOTATION_SCHEMA, config.writer, journal.record),
            progress,
        )
        filters = [s for s in stages if s.kind == FILTERS]
        new_rows = [
            ImageRecord(i.image_id, i.source_uri, i.width, i.height, i.format, list(i.source_uris)).to_row()
            for i in new_items
        ]
        pixel_rows = pa.concat_tables([pa.Table.from_pylist(new_rows, schema=ANNOTATION_SCHEMA), carry.rerun_pixels])
        annotated = 0
        if pixel_rows.num_rows:
            ensure_ray()
            needed = [s for s in stages if s.kind == FILTERS or new_items or s.config.name in carry.stale_specialists]
            batches = build_dataset(pixel_rows, needed, config).iter_batches(batch_format="pyarrow", batch_size=None)
            annotated = sink.drain(batches, "annotated", pixel_rows.num_rows)
        refilter_rows = carry.rerun_filters
        if refilter_rows.num_rows:
            if ensure_ray.started or refilter_rows.num_rows > IN_PROCESS_ROWS:
                ensure_ray()
                batches = build_dataset(refilter_rows, filters, config, read_pixels=False).iter_batches(
                    batch_format="pyarrow", batch_size=None
                )
            else:
                batches = run_in_process(refilter_rows, filters, config)
            sink.drain(batches, "re-filtered", refilter_rows.num_rows)
        new_shards = sink.writer.close()

    quarantine_rows = _quarantine_rows(quarantined) + sink.late_quarantine
    quarantine_writer = ShardWriter(
        root, "quarantine", f"part-{run_id}", QUARANTINE_SCHEMA, config.writer, count=_count_quarantine
    )
    if quarantine_rows:
        quarantine_writer.write(pa.Table.from_pylist(quarantine_rows, schema=QUARANTINE_SCHEMA))
    quarantine_shards = quarantine_writer.close()

    kept = carry.image_ids | sink.written
    path_ids = {p.source_uri: (p.image_id if p.reason is None else None) for p in probed}
    path_ids.update({row["source_uri"]: None for row in sink.late_quarantine})
    tombstone_rows = find_tombstones(previous_paths(root, previous.shards) if previous else {}, kept, path_ids)
    tombstones = (
        [_write_one(root, "tombstones", run_id, pa.Table.from_pylist(tombstone_rows, TOMBSTONE_SCHEMA), config)]
        if tombstone_rows
        else []
    )
    if previous is not None and previous.probe_index is not None and not split.misses and len(split.hits) == len(cache):
        probe_index: ShardInfo | None = previous.probe_index
    else:
        probe_index = _write_one(root, "probes", run_id, pa.Table.from_pylist(index_rows, PROBE_INDEX_SCHEMA), config)

    shards = carry.shards + new_shards
    counts = merge_counts(s.counts for s in shards)
    counts["quarantined"] = merge_counts(s.counts for s in quarantine_shards)
    stats = {
        "annotated": annotated,
        "reannotated": carry.rerun_pixels.num_rows,
        "refiltered": carry.rerun_filters.num_rows,
        "carried": len(carry.image_ids),
        "resumed": carry.resumed,
        "tombstoned": len(tombstone_rows),
        "probe_cached": len(split.hits),
        "probe_hashed": len(split.misses),
        "probe_seconds": round(probe_seconds, 3),
    }
    manifest = Manifest(
        version=(max(m.version for m in history) if history else 0) + 1,
        run_id=run_id,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        schema_version=SCHEMA_VERSION,
        config_fingerprint=config.fingerprint(),
        profile=config.profile,
        stages=plan.fingerprints,
        models={s.config.name: s.model for s in stages if s.model},
        shards=shards,
        quarantine=quarantine_shards,
        counts=counts,
        parent=previous.version if previous else None,
        extra={"inputs": list(request.inputs), "full": request.full, "ingest": ingest_key, **stats},
        tombstones=tombstones,
        probe_index=probe_index,
        stage_kinds={s.config.name: s.kind for s in stages},
    )
    publish(root, manifest)
    referenced = {path for m in [*history, manifest] for path in m.files()}
    clean_up_runs(root, published | {run_id}, referenced)
    return RunResult(
        manifest,
        len(files),
        annotated,
        len(carry.image_ids),
        len(quarantine_rows),
        time.perf_counter() - started,
        reannotated=carry.rerun_pixels.num_rows,
        refiltered=carry.rerun_filters.num_rows,
        resumed=carry.resumed,
        tombstoned=len(tombstone_rows),
        probe_cached=len(split.hits),
    )
