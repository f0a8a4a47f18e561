"""Phase 3 on Ray: rounds of train (Ray Train), re-annotate (Ray Data actor pool), merge, publish a version.

Round ``k`` fine-tunes the previous round's model (round 1: ``refine.checkpoint``) on the latest version's
annotations, streamed from its Parquet shards as Florence-2 samples (``refine/mixing.py``); the model then
re-annotates every image, its predictions pass through the profile's filters and are merged into the
annotations (``refine/merge.py``), and the result is published as a new version whose manifest carries the
round's numbers under ``extra.refine``: training loss curve, added / removed / changed / confirmed per type,
agreement rate.

Checkpoints (safetensors and the processor) live in ``DIR/refine/round-NN/``, completed by a ``DONE`` file.
A round whose checkpoint is complete is not trained again, so a killed refinement resumes with the
re-annotation of its last round.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from engine.config.settings import EngineConfig, RefineConfig, StageConfig
from engine.config.typed_config import ConfigError
from engine.errors import OutputError
from engine.execute.ray_session import ray_session
from engine.ingest.decode import BadImage, decode_image
from engine.ingest.locator import read_source
from engine.store.location import Location, Where, location
from engine.store.manifest import Manifest, all_manifests, next_version_number, publish
from engine.store.output_lock import OutputLock
from engine.store.writer import ShardWriter
from refine.folds import annotates, trains_on
from refine.merge import MergeStats
from refine.mixing import check_task_weights, mixed_samples
from refine.reannotate import AnnotateSettings, RoundAnnotator
from schemas.arrow import ANNOTATION_SCHEMA, conform, records_to_table
from schemas.records import ImageRecord
from specialists.hf_model import hf_model_identity, hf_snapshot_path, resolve_hf_model

REFINE_DIR = "refine"
TRAIN_LOG = "train.json"
DONE = "DONE"
STATS_COLUMN = "refine_stats"
MAX_CURVE_POINTS = 500
SAMPLE_SCHEMA = pa.schema(
    [("image_id", pa.string()), ("source_uri", pa.string()), ("task", pa.string()), ("prefix", pa.string()),
     ("target", pa.string())]
)  # fmt: skip
Progress = Callable[[str], None]


@dataclass
class RoundResult:
    round: int
    version: int
    checkpoint: Path
    losses: list[float]
    stats: MergeStats
    images: int
    seconds: float
    resumed: bool = False
    skipped_images: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def base_checkpoint(config: EngineConfig) -> str:
    """The directory of the Florence-2 checkpoint refinement starts from, or a clear error."""
    refine = config.refine
    if not refine.checkpoint:
        raise ConfigError(
            "refine.checkpoint is not set: refinement needs a Florence-2 checkpoint to start from "
            "(a local directory or a Hugging Face id already in the local cache) in the profile's refine section"
        )
    return hf_snapshot_path(resolve_hf_model(REFINE_DIR, "florence2", refine.checkpoint))


def round_dir(root: Location, round_: int) -> Path:
    """A round's checkpoint folder (checkpoints are local: refinement needs a local dataset)."""
    return Path(root.os_path) / REFINE_DIR / f"round-{round_:02d}"


def fold_dir(root: Location, round_: int, fold: int, folds: int) -> Path:
    """Fold ``fold``'s checkpoint of a round: the round's folder itself with one fold, ``fold-<i>/`` in it else."""
    folder = round_dir(root, round_)
    return folder if folds == 1 else folder / f"fold-{fold}"


def last_round(history: list[Manifest]) -> int:
    return max((int(m.extra.get("refine_round", 0)) for m in history), default=0)


# -- training --------------------------------------------------------------------------------


def _to_samples(batch: pa.Table, weights: dict[str, float], seed: int) -> pa.Table:
    rows = []
    for row in batch.to_pylist():
        record = ImageRecord.from_row(row)
        for sample in mixed_samples(record, weights, seed):
            rows.append({**asdict(sample), "source_uri": record.source_uri})
    return pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA)


@dataclass(frozen=True)
class FoldSelection:
    """Which rows of a version a pass reads: fold ``fold``'s training images (every image outside it) or the
    images it annotates (its own), among ``folds`` (``refine/folds.py``)."""

    fold: int
    folds: int
    annotating: bool

    def keeps(self, image_id: str) -> bool:
        if self.annotating:
            return annotates(image_id, self.fold, self.folds)
        return trains_on(image_id, self.fold, self.folds)


def _select(table: pa.Table, selection: FoldSelection | None) -> pa.Table:
    if selection is None or selection.folds == 1:
        return table
    mask = [selection.keeps(image_id) for image_id in table.column("image_id").to_pylist()]
    return table.filter(pa.array(mask, pa.bool_()))


def _read_row_groups(batch: pa.Table, selection: FoldSelection | None = None) -> pa.Table:
    import pyarrow.parquet as pq

    pieces = []
    for uri, group in zip(batch.column("path").to_pylist(), batch.column("row_group").to_pylist(), strict=True):
        with location(uri).open_input() as handle:
            piece = pq.ParquetFile(handle).read_row_group(group)
        # A shard of an older schema version gains the columns it lacks (``changes`` before 1.2.0) as nulls.
        pieces.append(conform(piece).select(ANNOTATION_SCHEMA.names).cast(ANNOTATION_SCHEMA))
    return _select(pa.concat_tables(pieces), selection) if pieces else ANNOTATION_SCHEMA.empty_table()


def _row_groups(uri: str) -> int:
    import pyarrow.parquet as pq

    with location(uri).open_input() as handle:
        return pq.ParquetFile(handle).num_row_groups


def shard_records(shard_uris: list[str], selection: FoldSelection | None = None) -> Any:
    """A lazy Ray dataset of a version's annotation rows (those ``selection`` keeps), one Parquet row group per
    read (streamed)."""
    import ray

    groups = [{"path": uri, "row_group": i} for uri in shard_uris for i in range(_row_groups(uri))]
    pieces = ray.data.from_items(groups, override_num_blocks=max(1, min(len(groups), 200)))
    return pieces.map_batches(
        _read_row_groups, fn_kwargs={"selection": selection}, batch_format="pyarrow", batch_size=1
    )


def sample_dataset(
    shard_paths: list[str], weights: dict[str, float], seed: int, selection: FoldSelection | None = None
) -> Any:
    """A lazy Ray dataset of training samples of the images ``selection`` keeps, streamed from the annotation
    shards (never all in memory)."""
    return shard_records(shard_paths, selection).map_batches(
        _to_samples, fn_kwargs={"weights": weights, "seed": seed}, batch_format="pyarrow", batch_size=64
    )


def _decoded(uri: str, max_pixels: int) -> Any:
    return decode_image(read_source(uri), max_pixels)[0]


def _train_worker(loop_config: dict[str, Any]) -> None:
    """Ray Train's per-worker loop: load, wrap for DDP, train on this worker's shard, rank 0 checkpoints."""
    import ray.train
    import ray.train.torch
    import torch
    from transformers import Florence2ForConditionalGeneration, Florence2Processor

    from refine.train import TrainExample, save_checkpoint, train_epochs

    settings, start = loop_config["settings"], loop_config["start"]
    torch.set_num_threads(max(1, int(loop_config["cpus_per_worker"])))
    processor = Florence2Processor.from_pretrained(start)
    model = Florence2ForConditionalGeneration.from_pretrained(start, use_safetensors=True)
    model = ray.train.torch.prepare_model(model)
    shard = ray.train.get_dataset_shard("train")

    def batches(epoch: int) -> Iterator[list[TrainExample]]:
        for batch in shard.iter_batches(
            batch_size=settings.batch_size,
            batch_format="pandas",
            local_shuffle_buffer_size=loop_config["shuffle_buffer"],
            local_shuffle_seed=settings.seed + epoch,
        ):
            examples = []
            for uri, prefix, target in zip(batch["source_uri"], batch["prefix"], batch["target"], strict=True):
                try:
                    examples.append(TrainExample(_decoded(uri, loop_config["max_pixels"]), prefix, target))
                except (OSError, BadImage):
                    continue  # the image moved or broke since it was annotated: its samples are skipped
            if examples:
                yield examples

    device = ray.train.torch.get_device()
    losses = train_epochs(model, processor, batches, settings, loop_config["total_steps"], device=device)
    metrics = {"steps": len(losses), "loss": losses[-1] if losses else float("nan")}
    if ray.train.get_context().get_world_rank() != 0:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as folder:
        save_checkpoint(model, processor, Path(folder))
        (Path(folder) / TRAIN_LOG).write_text(json.dumps({"losses": losses, "start": start}))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))


def train_round(
    root: Location,
    shard_paths: list[str],
    start: str,
    round_: int,
    config: EngineConfig,
    run_id: str,
    fold: int = 0,
) -> tuple[list[float], int]:
    """Fine-tune ``start`` with Ray Train on the samples of fold ``fold``'s training images (every image outside
    the fold); the checkpoint lands in :func:`fold_dir`. A fold with nothing to train on keeps ``start`` as its
    model (it never saw the fold either). Returns the losses and the number of samples."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    refine = config.refine
    target = fold_dir(root, round_, fold, refine.folds)
    samples = sample_dataset(shard_paths, refine.task_weights, round_, FoldSelection(fold, refine.folds, False))
    count = samples.count()
    if count == 0:
        _keep_start(start, target, round_)
        return [], 0
    steps_per_epoch = math.ceil(count / refine.num_workers / refine.train.batch_size)
    cpus_per_worker = 1
    run_name, trainer_storage = f"round-{round_:02d}-{fold}-{run_id}", str(Path(root.os_path) / REFINE_DIR / "ray")
    trainer = TorchTrainer(
        _train_worker,
        train_loop_config={
            "settings": refine.train,
            "start": start,
            "total_steps": steps_per_epoch * refine.train.epochs,
            "max_pixels": config.ingest.max_pixels,
            "shuffle_buffer": 64,
            "cpus_per_worker": cpus_per_worker,
        },
        scaling_config=ScalingConfig(
            num_workers=refine.num_workers, use_gpu=refine.use_gpu, resources_per_worker={"CPU": cpus_per_worker}
        ),
        run_config=RunConfig(name=run_name, storage_path=trainer_storage),
        datasets={"train": samples},
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"refinement round {round_}: training finished without a checkpoint ({result.error})")
    _keep_checkpoint(result.checkpoint, target, round_, start)
    # Ray Train's own copy of the run (checkpoint included) is no longer needed once the round has its own.
    shutil.rmtree(Path(trainer_storage) / run_name, ignore_errors=True)
    return json.loads((target / TRAIN_LOG).read_text())["losses"], count


def _keep_checkpoint(checkpoint: Any, target: Path, round_: int, start: str) -> Path:
    """Copy Ray Train's checkpoint to ``target``, complete (``DONE``) before it takes that name."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.to_directory(str(partial))
    (partial / DONE).write_text(json.dumps({"round": round_, "start": start}))
    partial.replace(target)
    return target


def _keep_start(start: str, target: Path, round_: int) -> None:
    """A fold without training samples: its model is ``start`` as it is, copied complete to ``target``."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(start, partial, ignore=shutil.ignore_patterns(DONE, TRAIN_LOG))
    (partial / TRAIN_LOG).write_text(json.dumps({"losses": [], "start": start, "samples": 0}))
    (partial / DONE).write_text(json.dumps({"round": round_, "start": start}))
    target.parent.mkdir(parents=True, exist_ok=True)
    partial.replace(target)


# -- re-annotation and merge -----------------------------------------------------------------


class RefineWorker:
    """A Ray Data callable class: the round's model and the profile's filters, loaded once per actor."""

    def __init__(
        self,
        checkpoint: str,
        round_: int,
        filters: tuple[StageConfig, ...],
        refine: RefineConfig,
        max_pixels: int,
        may_drop: bool,
    ) -> None:
        tasks = [task for task, weight in refine.task_weights.items() if weight > 0]
        settings = AnnotateSettings(refine.max_new_tokens, refine.num_beams, refine.annotate_num_gpus)
        stages = [stage.create() for stage in filters]
        self.annotator = RoundAnnotator(checkpoint, round_, tasks, stages, settings)
        self.annotator.setup()
        self.merge, self.max_pixels, self.may_drop = refine.merge, max_pixels, may_drop

    def __call__(self, batch: pa.Table) -> pa.Table:
        records = [ImageRecord.from_row(row) for row in batch.to_pylist()]
        images, readable = [], []
        for i, record in enumerate(records):
            try:
                images.append(_decoded(record.source_uri, self.max_pixels))
                readable.append(i)
            except (OSError, BadImage):
                continue  # kept as it is; counted as skipped
        stats = [json.dumps({"skipped": True})] * len(records)
        merged = (
            self.annotator.refine([records[i] for i in readable], images, self.merge, self.may_drop) if readable else []
        )
        for i, result in zip(readable, merged, strict=True):
            stats[i] = json.dumps(result.to_dict())
        table = records_to_table(records)
        return table.append_column(STATS_COLUMN, pa.array(stats, pa.string()))


def reannotate_round(
    root: Location,
    previous: Manifest,
    checkpoints: list[Path],
    round_: int,
    config: EngineConfig,
    run_id: str,
    may_drop: bool,
) -> tuple[list, MergeStats, int, list[int]]:
    """Re-annotate and merge every image of ``previous``, each by its fold's model (``checkpoints[i]`` annotates
    fold i, the images it never trained on); write the new shards; return them, the stats, the number of images
    that could not be read and the number of images each fold's model annotated. Without ``may_drop`` (see
    :func:`trusted`) contradicted annotations are counted, not dropped."""
    from ray.data import ActorPoolStrategy

    refine = config.refine
    extra: dict[str, Any] = {"num_gpus": refine.annotate_num_gpus} if refine.annotate_num_gpus else {}
    writer = ShardWriter(root, "annotations", f"part-{run_id}", ANNOTATION_SCHEMA, config.writer)
    total, skipped, annotated = MergeStats(), 0, []
    for fold, checkpoint in enumerate(checkpoints):
        selection = FoldSelection(fold, len(checkpoints), annotating=True)
        records = shard_records([(root / s.path).uri for s in previous.shards], selection)
        refined = records.map_batches(
            RefineWorker,
            fn_constructor_kwargs={
                "checkpoint": str(checkpoint),
                "round_": round_,
                "filters": config.filters,
                "refine": refine,
                "max_pixels": config.ingest.max_pixels,
                "may_drop": may_drop,
            },
            compute=ActorPoolStrategy(size=1),
            batch_size=refine.annotate_batch_size,
            batch_format="pyarrow",
            num_cpus=1,
            **extra,
        )
        count = 0
        for batch in refined.iter_batches(batch_format="pyarrow", batch_size=None):
            for text in batch.column(STATS_COLUMN).to_pylist():
                data = json.loads(text)
                if data.get("skipped"):
                    skipped += 1
                else:
                    total.add(MergeStats.from_dict(data))
            count += batch.num_rows
            writer.write(batch.drop_columns([STATS_COLUMN]))
        annotated.append(count)
    return writer.close(), total, skipped, annotated


def trusted(previous: Manifest, min_agreement: float) -> bool:
    """Whether the model's contradictions may drop annotations: the previous round's agreement rate reached
    ``min_agreement`` (a first round has no such evidence: it may drop only when ``min_agreement`` is 0)."""
    metrics = previous.extra.get("refine_metrics")
    if metrics is None:
        return min_agreement <= 0
    return float(metrics.get("agreement_rate", 0.0)) >= min_agreement


# -- the loop --------------------------------------------------------------------------------


def _curve(losses: list[float]) -> list[float]:
    stride = max(1, math.ceil(len(losses) / MAX_CURVE_POINTS))
    return [round(sum(losses[i : i + stride]) / len(losses[i : i + stride]), 5) for i in range(0, len(losses), stride)]


def refine_dataset(
    root: Where,
    config: EngineConfig,
    rounds: int,
    address: str | None = None,
    progress: Progress = print,
    progress_bars: bool = False,
) -> list[RoundResult]:
    """Run ``rounds`` rounds on the latest version of ``root``, publishing one new version each."""
    root = location(root)
    if not root.is_local:
        raise OutputError(
            f"{root}: refinement needs a local dataset (its checkpoints are local folders); "
            "copy the dataset to a local folder to refine it"
        )
    if rounds < 1:
        raise ConfigError(f"rounds: expected at least 1, got {rounds}")
    try:
        check_task_weights(config.refine.task_weights)
    except ValueError as error:
        raise ConfigError(f"refine.{error}") from None
    initial = base_checkpoint(config)
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-refine"
    results: list[RoundResult] = []
    with OutputLock(root, run_id) as lock:
        history = all_manifests(root)
        if not history:
            raise ConfigError(f"{root}: no published version to refine; run `fld-engine run` first")
        first = last_round(history) + 1
        with ray_session(config.ray, address, progress_bars):
            for round_ in range(first, first + rounds):
                result, manifest = run_round(root, history, round_, initial, config, run_id, progress, lock)
                history.append(manifest)
                results.append(result)
    return results


def run_round(
    root: Location,
    history: list[Manifest],
    round_: int,
    initial: str,
    config: EngineConfig,
    run_id: str,
    progress: Progress,
    lock: OutputLock,
) -> tuple[RoundResult, Manifest]:
    """One round: train a model per fold (or reuse the round's checkpoints), re-annotate each fold with its own
    model and merge, publish the next version."""
    started = time.perf_counter()
    previous = history[-1]
    folds = config.refine.folds
    shard_paths = [(root / s.path).uri for s in previous.shards]
    checkpoints, losses, samples = [], [], []
    resumed = True
    for fold in range(folds):
        checkpoint = fold_dir(root, round_, fold, folds)
        named = f"round {round_}" + (f" fold {fold}" if folds > 1 else "")
        if (checkpoint / DONE).is_file():
            log = json.loads((checkpoint / TRAIN_LOG).read_text())
            fold_losses, count = log["losses"], log.get("samples")
            progress(f"{named}: reusing the trained checkpoint {checkpoint}")
        else:
            resumed = False
            earlier = fold_dir(root, round_ - 1, fold, folds)
            start = str(earlier) if (earlier / DONE).is_file() else initial
            progress(f"{named}: training from {start}" + (f" without fold {fold}'s images" if folds > 1 else ""))
            fold_losses, count = train_round(root, shard_paths, start, round_, config, f"{run_id}-{round_}", fold)
        checkpoints.append(checkpoint)
        losses.append(fold_losses)
        samples.append(count)
    if all(count == 0 for count in samples):
        shutil.rmtree(round_dir(root, round_), ignore_errors=True)  # untrained copies of the start: not a round
        refine = config.refine
        raise ConfigError(
            f"{root}: the latest version has no annotations for the refine tasks "
            f"({', '.join(t for t, w in refine.task_weights.items() if w > 0)}); nothing to train on"
        )
    progress(f"round {round_}: re-annotating {sum(s.rows for s in previous.shards)} images")
    may_drop = trusted(previous, config.refine.merge.min_agreement_to_drop)
    round_run_id = f"{run_id}-r{round_:03d}"
    shards, stats, skipped, annotated = reannotate_round(
        root, previous, checkpoints, round_, config, round_run_id, may_drop
    )
    per_fold = [
        {"fold": i, "checkpoint": str(c), "train_samples": n, "steps": len(fl), "annotated_images": a}
        for i, (c, n, fl, a) in enumerate(zip(checkpoints, samples, losses, annotated, strict=True))
    ]
    all_losses = [loss for fold_losses in losses for loss in fold_losses]
    metrics = {**_round_metrics(checkpoints[0], all_losses, stats, skipped, may_drop), "folds": folds}
    metrics["per_fold"] = per_fold
    number = next_version_number(root, history)
    manifest = _round_manifest(previous, number, shards, round_, checkpoints, round_run_id, metrics)
    lock.check()
    publish(root, manifest)
    images = sum(s.rows for s in shards)
    seconds = time.perf_counter() - started
    result = RoundResult(
        round_, manifest.version, checkpoints[0], all_losses, stats, images, seconds, resumed, skipped, metrics
    )
    return result, manifest


def _round_metrics(
    checkpoint: Path, losses: list[float], stats: MergeStats, skipped: int, may_drop: bool
) -> dict[str, Any]:
    """What the round's manifest records under ``extra.refine_metrics``."""
    return {
        **stats.to_dict(),
        "checkpoint": str(checkpoint),
        "steps": len(losses),
        "loss_curve": _curve(losses),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "skipped_images": skipped,
        "may_drop": may_drop,
    }


def _round_manifest(
    previous: Manifest,
    number: int,
    shards: list,
    round_: int,
    checkpoints: list[Path],
    run_id: str,
    metrics: dict[str, Any],
) -> Manifest:
    """The round's version: the previous one's stages, quarantine, skipped images and probe index, the
    refined shards."""
    models = {}
    for fold, checkpoint in enumerate(checkpoints):
        key = f"refine_round_{round_}" + (f"_fold_{fold}" if len(checkpoints) > 1 else "")
        models[key] = hf_model_identity(resolve_hf_model(REFINE_DIR, "florence2", str(checkpoint)), None)
    return Manifest.next(
        previous,
        number=number,
        run_id=run_id,
        config_fingerprint=previous.config_fingerprint,
        profile=previous.profile,
        stages=previous.stages,
        stage_kinds=previous.stage_kinds,
        models={**previous.models, **models},
        shards=shards,
        quarantine=previous.quarantine,
        skipped=previous.skipped,
        tombstones=[],
        probe_index=previous.probe_index,
        extra={"refine_round": round_, "refine_metrics": metrics},
    )
