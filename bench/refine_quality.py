"""Does refinement correct noisy annotations? Filters, then rounds, scored against exact ground truth.

The experiment of issue 16. Generated scenes (``bench/scenes.py``: five classes of shapes, signs with
printed words, exact boxes) get initial annotations with known, tagged noise (``bench/annotation_noise.py``:
jittered boxes, wrong labels, missed objects, three kinds of spurious boxes, junk captions), written as COCO
``instances`` and ``captions`` files. They are imported as version 1 through the profile's filters
(``bench/refine_quality_profile.yaml``), then ``fld-engine refine`` runs its rounds with a small random-init
Florence-2 (``bench/refine_model.py``) trained here. Printed per version: COCO box AP / AP50 / AR100
against the truth (pycocotools); for the filters, the fraction of each injected error kind they removed
and of correct annotations they lost; per round, the training loss per epoch and what the merge did.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import io
import json
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from bench.annotation_noise import CORRECT, NoiseRates, NoisyAnnotations, ground_truth, inject_noise, rates_dict
from bench.scenes import CLASSES, Scene, render_scene
from engine.config.profile import parse_config
from engine.config.settings import EngineConfig
from engine.store.reader import iter_records
from schemas.records import ImageRecord, Provenance, Region, Text

PROFILE = Path(__file__).with_name("refine_quality_profile.yaml")
IMPORT_SOURCE = "import:noisy"


@dataclass
class Generated:
    """The bench's inputs: scene images on disk, their truth and the noisy annotations."""

    images: Path
    names: list[str]
    scenes: list[Scene]
    truth: dict[str, Any]
    noisy: NoisyAnnotations
    annotation_files: tuple[Path, Path]


def generate(folder: Path, count: int, size: int, seed: int, rates: NoiseRates) -> Generated:
    """Render ``count`` scenes as PNG files into ``folder/images`` and write the noisy COCO files beside."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    scenes = [render_scene(i, size, seed) for i in range(count)]
    names = [f"scene-{i:05d}.png" for i in range(count)]
    for scene, name in zip(scenes, names, strict=True):
        Image.fromarray(scene.pixels).save(images / name)
    noisy = inject_noise(scenes, names, rates, seed)
    files = noisy.write(folder / "annotations")
    return Generated(images, names, scenes, ground_truth(scenes, names), noisy, files)


# -- version 1: the noisy annotations imported through the filters ---------------------------------


def imported_records(generated: Generated) -> list[ImageRecord]:
    """The COCO files as records: objects and captions with provenance ``import:noisy`` and their scores."""
    noisy = generated.noisy
    by_image: dict[int, ImageRecord] = {}
    for image in noisy.instances["images"]:
        path = generated.images / image["file_name"]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        by_image[image["id"]] = ImageRecord(digest, str(path), image["width"], image["height"], "png")
    provenance = Provenance(IMPORT_SOURCE, "instances.json", 0)
    for annotation in noisy.instances["annotations"]:
        x, y, w, h = annotation["bbox"]
        label = CLASSES[annotation["category_id"] - 1]
        region = Region("object", (x, y, x + w, y + h), label, provenance, score=annotation.get("score"))
        by_image[annotation["image_id"]].regions.append(region)
    captions = Provenance(IMPORT_SOURCE, "captions.json", 0)
    for annotation in noisy.captions["annotations"]:
        by_image[annotation["image_id"]].texts.append(Text("brief", annotation["caption"], captions))
    return list(by_image.values())


def import_version(generated: Generated, root: Path, config: EngineConfig) -> list[ImageRecord]:
    """Version 1 as ``fld-engine run IMAGES OUT --annotations instances.json captions.json`` makes it with the
    bench's profile (no specialists: the imports, then the filters); its records, drops included."""
    from engine.api import run
    from engine.ingest.imports.plan import with_imports

    files = [str(path) for path in generated.annotation_files]
    run(generated.images, root, config=with_imports(config, files, [str(generated.images)]))
    return list(iter_records(root, 1))


class NoiseTags:
    """The injected tag of an imported annotation: a caption by its text, a box by its label and the injected
    box it overlaps most (a filter may have clipped it to the image, so exact coordinates are not required)."""

    def __init__(self, noisy: NoisyAnnotations) -> None:
        names = {image["id"]: image["file_name"] for image in noisy.instances["images"]}
        self.boxes: dict[tuple[str, str], list[tuple[tuple[float, ...], str]]] = {}
        for annotation in noisy.instances["annotations"]:
            x, y, w, h = annotation["bbox"]
            key = (names[annotation["image_id"]], CLASSES[annotation["category_id"] - 1])
            self.boxes.setdefault(key, []).append(((x, y, x + w, y + h), annotation["noise"]))
        self.captions = {
            (names[a["image_id"]], a["caption"]): "caption_" + a["noise"] for a in noisy.captions["annotations"]
        }

    def box(self, image: str, label: str, box: tuple[float, ...]) -> str:
        from schemas.boxes import box_iou

        candidates = self.boxes.get((image, label), [])
        best = max(candidates, key=lambda c: box_iou(c[0], box), default=None)
        if best is None or box_iou(best[0], box) < 0.5:
            raise KeyError(f"{image}: no injected {label} box near {box}")
        return best[1]

    def caption(self, image: str, text: str) -> str:
        return self.captions[(image, text)]


def filter_accounting(generated: Generated, records: list[ImageRecord]) -> dict[str, Any]:
    """Per noise tag: how many annotations were imported and the fraction the filters removed, with the
    rules that removed them."""
    tags = NoiseTags(generated.noisy)
    table: dict[str, dict[str, Any]] = {}

    def count(tag: str, removed: bool, rule: str | None = None) -> None:
        row = table.setdefault(tag, {"imported": 0, "removed": 0, "rules": {}})
        row["imported"] += 1
        if removed:
            row["removed"] += 1
            row["rules"][rule] = row["rules"].get(rule, 0) + 1

    for record in records:
        name = Path(record.source_uri).name
        for region in record.regions:
            count(tags.box(name, region.text, region.bbox), False)
        for text in record.texts:
            count(tags.caption(name, text.text), False)
        for drop in record.dropped:
            data = json.loads(drop.annotation)
            if drop.annotation_type == "region":
                count(tags.box(name, data["text"], tuple(data["bbox"])), True, f"{drop.stage}/{drop.rule}")
            elif drop.annotation_type == "text":
                count(tags.caption(name, data["text"]), True, f"{drop.stage}/{drop.rule}")
    for row in table.values():
        row["removed_fraction"] = round(row["removed"] / row["imported"], 4) if row["imported"] else 0.0
    return dict(sorted(table.items()))


def filter_targets(accounting: dict[str, Any]) -> dict[str, Any]:
    """The issue's filter targets: spurious boxes and junk captions removed, correct annotations lost."""

    def fraction(tags: list[str]) -> float:
        rows = [accounting[t] for t in tags if t in accounting]
        imported = sum(r["imported"] for r in rows)
        return round(sum(r["removed"] for r in rows) / imported, 4) if imported else 0.0

    spurious = [t for t in accounting if t.startswith("spurious")] + ["caption_junk"]
    correct = [CORRECT, "caption_" + CORRECT]
    removed, lost = fraction(spurious), fraction(correct)
    return {
        "spurious_and_junk_removed": removed,
        "correct_lost": lost,
        "correct_boxes_lost": fraction([CORRECT]),
        "correct_captions_lost": fraction(["caption_" + CORRECT]),
        "met": removed >= 0.8 and lost <= 0.05,
    }


# -- scoring -------------------------------------------------------------------------------------


def coco_detections(records: list[ImageRecord], image_ids: dict[str, int]) -> tuple[list[dict[str, Any]], int]:
    """The records' object boxes as COCO results (unscored boxes count with score 1), and how many boxes
    had a label outside the classes."""
    detections, unknown = [], 0
    for record in records:
        for region in record.regions:
            if region.kind != "object":
                continue
            if region.text not in CLASSES:
                unknown += 1
                continue
            x0, y0, x1, y1 = region.bbox
            detections.append(
                {
                    "image_id": image_ids[Path(record.source_uri).name],
                    "category_id": CLASSES.index(region.text) + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "score": 1.0 if region.score is None else float(region.score),
                }
            )
    return detections, unknown


def average_precision(records: list[ImageRecord], truth: dict[str, Any]) -> dict[str, Any]:
    """COCO box AP, AP50 and AR100 of the records' objects against ``truth``."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    image_ids = {image["file_name"]: image["id"] for image in truth["images"]}
    detections, unknown = coco_detections(records, image_ids)
    result = {"boxes": len(detections) + unknown, "unknown_labels": unknown}
    if not detections:
        return {**result, "AP": 0.0, "AP50": 0.0, "AR100": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        reference = COCO()
        reference.dataset = copy.deepcopy(truth)  # COCOeval writes ignore flags into the annotations
        reference.createIndex()
        evaluation = COCOeval(reference, reference.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = [max(0.0, float(v)) for v in evaluation.stats]
    return {**result, "AP": round(stats[0], 4), "AP50": round(stats[1], 4), "AR100": round(stats[8], 4)}


def version_records(root: Path, version: int) -> list[ImageRecord]:
    return list(iter_records(root, version))


# -- the experiment ------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench refine_quality", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", type=int, default=128, help="scene side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=8, help="training epochs per round")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--model", choices=("tiny", "small", "base"), default="small", help="bench/refine_model.py")
    parser.add_argument("--checkpoint", help="a Florence-2 checkpoint directory instead of a random-init model")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--folds", type=int, default=2, help="cross-fitting folds (refine.folds)")
    parser.add_argument("--filters-only", action="store_true", help="stop after version 1 (no refinement)")
    parser.add_argument("--work", help="work folder (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (images, COCO files, dataset)")
    return parser.parse_args(argv)


def refine_config(args: argparse.Namespace, checkpoint: str) -> EngineConfig:
    profile = yaml.safe_load(PROFILE.read_text())
    profile["refine"] = {
        "checkpoint": checkpoint,
        "task_weights": {"<OD>": 1.0},
        "train": {
            "learning_rate": args.lr,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "warmup_fraction": 0.05,
            "max_target_tokens": 128,
        },
        "folds": args.folds,
        "use_gpu": args.device == "cuda",
        "annotate_num_gpus": 0.5 if args.device == "cuda" else 0.0,
        "max_new_tokens": 96,
        "num_beams": 1,
        "annotate_batch_size": 16,
    }
    return parse_config(profile)


def epoch_losses(losses: list[float], epochs: int) -> list[float]:
    """Mean training loss per epoch (the steps split evenly into ``epochs``)."""
    if not losses:
        return []
    per = max(1, math.ceil(len(losses) / epochs))
    return [round(float(np.mean(losses[i : i + per])), 4) for i in range(0, len(losses), per)]


def main(argv: list[str]) -> dict[str, Any]:
    args = parse_args(argv)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="fld-refine-quality-"))
    try:
        return experiment(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def experiment(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Generate, import through the filters, refine; the measures of every step."""
    from engine.refine_loop import refine_dataset

    rates = NoiseRates()
    started = time.perf_counter()
    generated = generate(work, args.images, args.size, args.seed, rates)
    checkpoint = args.checkpoint
    if checkpoint is None:
        from bench.refine_model import SIZES, build_bench_florence2

        checkpoint = str(build_bench_florence2(work / "model", SIZES[args.model]))
    config = refine_config(args, checkpoint)
    raw = average_precision(imported_records(generated), generated.truth)
    root = work / "dataset"
    records = import_version(generated, root, config)
    accounting = filter_accounting(generated, records)
    versions = {"v0 (imported, before filters)": raw, "v1 (after filters)": average_precision(records, generated.truth)}
    result: dict[str, Any] = {
        "images": args.images,
        "true_objects": len(generated.truth["annotations"]),
        "noise": rates_dict(rates),
        "injected": generated.noisy.tags(),
        "filters": {"targets": filter_targets(accounting), **accounting},
        "versions": versions,
        "prepare_seconds": round(time.perf_counter() - started, 1),
    }
    if args.filters_only:
        return result
    started = time.perf_counter()
    rounds = refine_dataset(root, config, args.rounds, progress=lambda _: None)
    for outcome in rounds:
        scores = average_precision(version_records(root, outcome.version), generated.truth)
        versions[f"v{outcome.version} (round {outcome.round})"] = {
            **scores,
            # the folds' steps come one fold after the other; folds are about equal (a hash split)
            "loss_per_fold_epoch": epoch_losses(outcome.losses, args.epochs * args.folds),
            "merge": {k: v for k, v in outcome.stats.to_dict().items() if k != "compared"},
            "seconds": round(outcome.seconds, 1),
        }
    result["model"] = args.model if args.checkpoint is None else checkpoint
    result["training"] = {"rounds": args.rounds, "epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size}
    result["refine_seconds"] = round(time.perf_counter() - started, 1)
    last = versions[list(versions)[-1]]
    result["ap_gain_points"] = round(100 * (last["AP"] - versions["v1 (after filters)"]["AP"]), 2)
    return result
