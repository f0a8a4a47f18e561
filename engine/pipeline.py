"""The engine's main job: images in, versioned annotation shards out, on Ray Data.

Probe (hash and decode-check every file) -> plan (duplicates once, quarantine the bad, carry over
images the same pipeline already annotated) -> annotate (one streaming ``map_batches`` per stage:
model stages in actor pools, the rest as tasks) -> write shards -> publish the manifest last.
"""

from __future__ import annotations

import functools
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from engine.carryover import CarryOver, plan_carry_over
from engine.config import EngineConfig, StageConfig
from engine.counts import merge_counts, value_counts
from engine.ingest import ProbedFile, WorkItem, discover, plan_work, probe_file
from engine.manifest import Manifest, list_versions, publish, read_manifest
from engine.ray_session import ray_session
from engine.stage_runner import StageWorker, run_stage_on_table
from engine.typed_config import ConfigError
from engine.writer import ShardWriter
from schemas.arrow import ANNOTATION_SCHEMA, IN_FLIGHT_SCHEMA, QUARANTINE_SCHEMA, SCHEMA_VERSION
from schemas.records import ImageRecord, StageError
from specialists.base import WeightsNotFound

INGEST_STAGE = "ingest"
MAX_INPUT_BLOCKS = 1000
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
    manifest: Manifest
    files: int
    annotated: int
    carried: int
    quarantined: int
    seconds: float


@dataclass(frozen=True)
class PlannedStage:
    """A configured stage with its kind (specialists or filters), fingerprint and model identity."""

    config: StageConfig
    kind: str
    fingerprint: str
    model: str
    holds_model: bool


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
            planned.append(PlannedStage(stage_config, kind, stage.fingerprint(), model, holds_model))
    if missing:
        lines = [
            f"{c.specialist} ({c.backend}) {c.model!r}: looked in {', '.join(c.looked_in) or '-'}" for c in missing
        ]
        raise WeightsNotFound("weights missing for " + "; ".join(lines))
    return planned


def _probe_batch(batch: pa.Table, max_pixels: int, max_bytes: int) -> pa.Table:
    probed = [asdict(probe_file(uri, max_pixels, max_bytes)) for uri in batch.column("source_uri").to_pylist()]
    return pa.Table.from_pylist(probed)


def _load_bytes(batch: pa.Table) -> pa.Table:
    """Read each image's bytes; a file that vanished or changed since probing gets an ingest error."""
    rows = []
    for row in batch.to_pylist():
        record = ImageRecord(
            row["image_id"], row["source_uri"], row["width"], row["height"], row["format"], list(row["source_uris"])
        )
        data = b""
        try:
            data = Path(row["source_uri"]).read_bytes()
            if hashlib.sha256(data).hexdigest() != row["image_id"]:
                record.errors.append(StageError(INGEST_STAGE, "changed_since_probe: file bytes changed during the run"))
        except OSError as error:
            record.errors.append(StageError(INGEST_STAGE, f"unreadable: {error}"))
        out = record.to_row()
        out["image_bytes"] = data
        rows.append(out)
    return pa.Table.from_pylist(rows, schema=IN_FLIGHT_SCHEMA)


@functools.lru_cache(maxsize=32)
def _task_stage(stage_config: StageConfig, kind: str) -> Any:
    stage = stage_config.create(kind)
    stage.setup()
    return stage


def _run_task_stage(batch: pa.Table, stage_config: StageConfig, kind: str, max_pixels: int) -> pa.Table:
    return run_stage_on_table(_task_stage(stage_config, kind), batch, max_pixels)


def _check_capacity(stages: list[PlannedStage]) -> None:
    """Fail clearly when the actor pools cannot all be placed (Ray Data would otherwise wait forever)."""
    import ray

    resources = ray.cluster_resources()
    for name, total in (("CPU", "num_cpus"), ("GPU", "num_gpus")):
        demand = sum(getattr(s.config.resources, total) * s.config.resources.pool_size for s in stages if s.holds_model)
        available = resources.get(name, 0.0)
        if demand > available + 1e-9:
            raise ConfigError(
                f"the stages' actor pools need {demand:g} {name}s but Ray has {available:g}; lower "
                f"resources.{total} or pool_size in the profile, or give Ray more (ray.num_cpus / a cluster)"
            )


def build_dataset(work: list[WorkItem], stages: list[PlannedStage], config: EngineConfig) -> Any:
    """The lazy Ray Data pipeline over ``work``: load bytes, then one ``map_batches`` per stage."""
    import ray
    from ray.data import ActorPoolStrategy

    items = [asdict(item) | {"source_uris": list(item.source_uris)} for item in work]
    blocks = min(MAX_INPUT_BLOCKS, max(1, len(items) // config.ray.decode_batch_size))
    ds = ray.data.from_items(items, override_num_blocks=blocks)
    ds = ds.map_batches(_load_bytes, batch_format="pyarrow", batch_size=config.ray.decode_batch_size, num_cpus=0.25)
    max_pixels = config.ingest.max_pixels
    for stage in stages:
        resources = stage.config.resources
        common: dict[str, Any] = {
            "batch_format": "pyarrow",
            "batch_size": resources.batch_size,
            "num_cpus": resources.num_cpus,
        }
        if resources.num_gpus:
            common["num_gpus"] = resources.num_gpus
        if stage.holds_model:
            ds = ds.map_batches(
                StageWorker,
                fn_constructor_kwargs={"stage_config": stage.config, "kind": stage.kind, "max_pixels": max_pixels},
                compute=ActorPoolStrategy(size=resources.pool_size),
                **common,
            )
        else:
            ds = ds.map_batches(
                _run_task_stage,
                fn_kwargs={"stage_config": stage.config, "kind": stage.kind, "max_pixels": max_pixels},
                **common,
            )
    return ds


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


def run_pipeline(request: RunRequest, progress: Progress = print) -> RunResult:
    """Annotate ``request.inputs`` into a new version of ``request.output``."""
    import ray

    started = time.perf_counter()
    config, root = request.config, request.output
    files = discover(request.inputs, config.ingest.extensions)
    if request.limit is not None:
        files = files[: request.limit]
    stages = plan_stages(config)
    stage_fingerprints = {s.config.name: s.fingerprint for s in stages}
    previous = None if request.full else read_manifest(root)
    run_id = _new_run_id()
    progress(f"fld-engine: {len(files)} input files, {len(stages)} stages, output {root}")

    with ray_session(config.ray, request.address, request.progress_bars):
        _check_capacity(stages)
        probed_rows = []
        if files:
            probe = ray.data.from_items(
                [{"source_uri": f} for f in files], override_num_blocks=max(1, min(len(files), 32))
            )
            probed_rows = probe.map_batches(
                _probe_batch,
                fn_kwargs={"max_pixels": config.ingest.max_pixels, "max_bytes": config.ingest.max_bytes},
                batch_format="pyarrow",
                batch_size=16,
                num_cpus=0.5,
            ).take_all()
        work, quarantined = plan_work(ProbedFile(**row) for row in probed_rows)
        carry: CarryOver = plan_carry_over(root, previous, work, stage_fingerprints, config.writer, run_id)
        todo = [item for item in work if item.image_id not in carry.image_ids]
        progress(
            f"probed {len(files)} files: {len(work)} unique images, {len(quarantined)} quarantined, "
            f"{len(carry.image_ids)} carried over from version {previous.version if previous else '-'}, "
            f"{len(todo)} to annotate"
        )
        writer = ShardWriter(root, "annotations", f"part-{run_id}", ANNOTATION_SCHEMA, config.writer)
        late_quarantine: list[dict[str, Any]] = []
        done = 0
        if todo:
            for batch in build_dataset(todo, stages, config).iter_batches(batch_format="pyarrow", batch_size=None):
                failures = [_ingest_failure(row) for row in batch.select(["errors"]).to_pylist()]
                bad = [i for i, failure in enumerate(failures) if failure]
                for i in bad:
                    row = batch.slice(i, 1).select(["source_uri", "image_id"]).to_pylist()[0]
                    reason, _, detail = failures[i].partition(": ")  # type: ignore[union-attr]
                    late_quarantine.append({**row, "reason": reason, "detail": detail, "size_bytes": None})
                if bad:
                    keep = pa.array([not f for f in failures])
                    batch = batch.filter(keep)
                writer.write(batch.drop_columns(["image_bytes"]))
                done += batch.num_rows
                progress(f"annotated {done}/{len(todo)} images")
        new_shards = writer.close()

    quarantine_rows = _quarantine_rows(quarantined) + late_quarantine
    quarantine_writer = ShardWriter(
        root, "quarantine", f"part-{run_id}", QUARANTINE_SCHEMA, config.writer, count=_count_quarantine
    )
    if quarantine_rows:
        quarantine_writer.write(pa.Table.from_pylist(quarantine_rows, schema=QUARANTINE_SCHEMA))
    quarantine_shards = quarantine_writer.close()

    shards = carry.shards + new_shards
    counts = merge_counts(s.counts for s in shards)
    counts["quarantined"] = merge_counts(s.counts for s in quarantine_shards)
    version = (list_versions(root) or [0])[-1] + 1
    manifest = Manifest(
        version=version,
        run_id=run_id,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        schema_version=SCHEMA_VERSION,
        config_fingerprint=config.fingerprint(),
        profile=config.profile,
        stages=stage_fingerprints,
        models={s.config.name: s.model for s in stages if s.model},
        shards=shards,
        quarantine=quarantine_shards,
        counts=counts,
        parent=previous.version if previous else None,
        extra={"inputs": list(request.inputs), "annotated": done, "carried": len(carry.image_ids)},
    )
    publish(root, manifest)
    return RunResult(
        manifest, len(files), done, len(carry.image_ids), len(quarantine_rows), time.perf_counter() - started
    )


def _count_quarantine(table: pa.Table) -> dict[str, int]:
    return {"total": table.num_rows, **value_counts(table.column("reason"))}
