"""Does refinement improve noisy annotations? COCO AP of the object boxes before and after each round.

A synthetic set with known ground truth: rendered squares, circles and triangles on textured
backgrounds. The initial annotations are the ground truth made noisy the way specialists err: boxes
jittered, labels swapped, boxes missing. Version 1 holds them; ``fld-engine refine`` runs the rounds
(Ray Train fine-tuning, re-annotation, merge), and every version's boxes are scored against the truth
with pycocotools' COCOeval. Without ``--checkpoint`` the model is the tests' tiny random-init Florence-2
(64 px input, 1+1 layers), so the numbers say whether the loop runs end to end and what it does at that
scale, not what a real Florence-2 would gain.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image, ImageDraw

from engine.config.profile import parse_config
from engine.refine_loop import refine_dataset
from engine.store.manifest import Manifest, publish
from engine.store.reader import iter_records
from engine.store.writer import ShardWriter
from schemas.arrow import ANNOTATION_SCHEMA, SCHEMA_VERSION
from schemas.boxes import box_iou
from schemas.records import ImageRecord, Provenance, Region

CLASSES = ("square", "circle", "triangle")
COLOURS = {"square": (220, 40, 40), "circle": (40, 200, 60), "triangle": (50, 80, 230)}
NOISY = Provenance("noisy_specialist", "synthetic-noise", 0)


def render(i: int, size: int) -> tuple[np.ndarray, list[tuple[str, tuple[float, float, float, float]]]]:
    """Image ``i``: 1-3 non-overlapping shapes; returns the pixels and the true (label, box) pairs."""
    rng = np.random.default_rng(1000 + i)
    background = rng.integers(90, 160, (size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    truth: list[tuple[str, tuple[float, float, float, float]]] = []
    for _ in range(int(rng.integers(1, 4))):
        for _attempt in range(20):
            side = float(rng.uniform(0.2, 0.45) * size)
            x0, y0 = float(rng.uniform(0, size - side)), float(rng.uniform(0, size - side))
            box = (x0, y0, x0 + side, y0 + side)
            if all(box_iou(box, other) == 0 for _, other in truth):
                break
        else:
            continue
        label = CLASSES[int(rng.integers(len(CLASSES)))]
        if label == "square":
            draw.rectangle(box, fill=COLOURS[label])
        elif label == "circle":
            draw.ellipse(box, fill=COLOURS[label])
        else:
            draw.polygon([(box[0], box[3]), ((box[0] + box[2]) / 2, box[1]), (box[2], box[3])], fill=COLOURS[label])
        truth.append((label, box))
    return np.asarray(image), truth


def corrupt(
    truth: list[tuple[str, tuple[float, ...]]],
    size: int,
    rng: np.random.Generator,
    jitter: float,
    swap: float,
    miss: float,
) -> list[Region]:
    """The truth as a noisy specialist would give it: jittered boxes, swapped labels, missing boxes."""
    regions = []
    for label, (x0, y0, x1, y1) in truth:
        if rng.random() < miss:
            continue
        if rng.random() < swap:
            label = str(rng.choice([c for c in CLASSES if c != label]))
        w, h = x1 - x0, y1 - y0
        dx0, dy0, dx1, dy1 = rng.normal(0, jitter, 4) * np.array([w, h, w, h])
        box = np.clip([x0 + dx0, y0 + dy0, x1 + dx1, y1 + dy1], 0, size)
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            continue
        regions.append(Region("object", tuple(float(v) for v in box), label, NOISY, score=0.5))
    return regions


def build_dataset(root: Path, images: Path, count: int, size: int, noise: dict[str, float]) -> dict[str, Any]:
    """Write the images, publish version 1 with noisy boxes, and return the COCO ground truth."""
    images.mkdir(parents=True)
    rng = np.random.default_rng(7)
    gt: dict[str, Any] = {"images": [], "annotations": [], "categories": []}
    gt["categories"] = [{"id": i + 1, "name": name} for i, name in enumerate(CLASSES)]
    rows = []
    for i in range(count):
        pixels, truth = render(i, size)
        path = images / f"shapes-{i:04d}.png"
        Image.fromarray(pixels).save(path)
        record = ImageRecord(f"{i:064x}", str(path), size, size, "png")
        record.regions = corrupt(truth, size, rng, **noise)
        rows.append(record.to_row())
        gt["images"].append({"id": i + 1, "width": size, "height": size, "file_name": path.name})
        for label, (x0, y0, x1, y1) in truth:
            gt["annotations"].append(
                {
                    "id": len(gt["annotations"]) + 1,
                    "image_id": i + 1,
                    "category_id": CLASSES.index(label) + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
    writer = ShardWriter(root, "annotations", "part-synthetic", ANNOTATION_SCHEMA, parse_config({}).writer)
    writer.write(pa.Table.from_pylist(rows, schema=ANNOTATION_SCHEMA))
    publish(root, Manifest(1, "synthetic", "", SCHEMA_VERSION, "synthetic", "bench", {}, {}, writer.close(), [], {}))
    return gt


def average_precision(root: Path, version: int, gt: dict[str, Any]) -> dict[str, Any]:
    """COCO AP / AP50 of one version's object boxes (unscored boxes count with score 1)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    detections, unknown, boxes = [], 0, 0
    for record in iter_records(root, version):
        image_id = int(record.image_id, 16) + 1
        for region in record.regions:
            if region.kind != "object":
                continue
            boxes += 1
            if region.text not in CLASSES:
                unknown += 1
                continue
            x0, y0, x1, y1 = region.bbox
            detections.append(
                {
                    "image_id": image_id,
                    "category_id": CLASSES.index(region.text) + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "score": 1.0 if region.score is None else float(region.score),
                }
            )
    result = {"boxes": boxes, "unknown_labels": unknown}
    if not detections:
        return {**result, "AP": 0.0, "AP50": 0.0, "AR100": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = copy.deepcopy(gt)  # COCOeval writes ignore flags into the annotations
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = [max(0.0, float(v)) for v in evaluation.stats]
    return {**result, "AP": round(stats[0], 4), "AP50": round(stats[1], 4), "AR100": round(stats[8], 4)}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench refine_quality", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--size", type=int, default=96, help="image side in pixels")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--checkpoint", help="a Florence-2 checkpoint directory (default: the tiny random-init one)")
    parser.add_argument("--jitter", type=float, default=0.15, help="box jitter, as a fraction of the box side")
    parser.add_argument("--swap", type=float, default=0.2, help="probability that a label is swapped")
    parser.add_argument("--miss", type=float, default=0.2, help="probability that a box is missing")
    parser.add_argument("--min-new-score", type=float, default=0.5)
    parser.add_argument(
        "--min-agreement-to-drop", type=float, default=0.5, help="previous round's agreement needed to drop boxes"
    )
    parser.add_argument(
        "--add-unscored", action="store_true", help="add new boxes without a score (Florence-2's generation gives none)"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> dict[str, Any]:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fld-refine-quality-"))
    checkpoint = args.checkpoint
    if checkpoint is None:
        from tests.support.tiny_models.florence import build_tiny_florence2

        checkpoint = str(build_tiny_florence2(work / "tiny-florence2"))
    noise = {"jitter": args.jitter, "swap": args.swap, "miss": args.miss}
    root = work / "dataset"
    gt = build_dataset(root, work / "images", args.images, args.size, noise)
    config = parse_config(
        {
            "refine": {
                "checkpoint": checkpoint,
                "task_weights": {"<OD>": 1.0},
                "train": {
                    "learning_rate": args.lr,
                    "epochs": args.epochs,
                    "batch_size": args.batch_size,
                    "warmup_fraction": 0.1,
                },
                "merge": {
                    "min_new_score": args.min_new_score,
                    "add_unscored": args.add_unscored,
                    "min_agreement_to_drop": args.min_agreement_to_drop,
                },
                "max_new_tokens": 64,
                "num_beams": 1,
                "annotate_batch_size": 8,
            },
            "filters": [{"name": "geometry", "backend": "geometry"}, {"name": "nms", "backend": "nms"}],
        }
    )
    started = time.perf_counter()
    rounds = refine_dataset(root, config, args.rounds, progress=lambda _: None)
    seconds = time.perf_counter() - started
    versions = {"v1 (noisy input)": average_precision(root, 1, gt)}
    for result in rounds:
        versions[f"v{result.version} (round {result.round})"] = {
            **average_precision(root, result.version, gt),
            "loss_first": round(result.losses[0], 4),
            "loss_last": round(result.losses[-1], 4),
            "steps": len(result.losses),
            **{k: v for k, v in result.stats.to_dict().items() if k != "compared"},
        }
    return {
        "model": "tiny random-init Florence-2 (tests.support.tiny_models)" if args.checkpoint is None else checkpoint,
        "images": args.images,
        "ground_truth_boxes": len(gt["annotations"]),
        "noise": noise,
        "rounds": args.rounds,
        "epochs_per_round": args.epochs,
        "learning_rate": args.lr,
        "add_unscored": args.add_unscored,
        "min_agreement_to_drop": args.min_agreement_to_drop,
        "refine_seconds": round(seconds, 1),
        "versions": versions,
    }
