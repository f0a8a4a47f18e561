"""NMS cost: our columnar NMS (torchvision's kernel plus suppressor attribution) against torchvision alone.

Boxes are detector-like: objects with several jittered duplicate detections each, labelled with one
of a few classes, so that a realistic share is suppressed. Two layouts of 100,000 boxes: ``per_image``
(1,000 images of 100 boxes) and ``one_call`` (one huge image: 100,000 boxes of 80 classes, a stress
case). torchvision runs ``batched_nms`` per image; ours runs ``box_nms`` once over all images, suppressor
attribution included, as the NMS stage does per batch. Both get the same prepared arrays and run pinned
to one core with one torch thread, best of a few runs in CPU seconds. The NMS stage end to end (Region
objects in, drop records out, JSON of every dropped annotation included) is timed on ``per_image``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torchvision.ops import batched_nms

from bench.cluster import pinned
from filters.nms import NmsFilter, NmsOptions
from schemas.boxes import box_nms
from schemas.records import ImageRecord, Provenance, Region

RATIO_TARGET = 1.2
IOU_THRESHOLD = 0.5


def detections(rng: np.random.Generator, count: int, classes: int, size: float) -> tuple[np.ndarray, ...]:
    """``count`` boxes, scores and class ids: ~4 jittered detections per object."""
    objects = max(1, count // 4)
    centres = rng.uniform(0, size, (objects, 2))
    extents = rng.uniform(size * 0.03, size * 0.25, (objects, 2))
    owner = rng.integers(0, objects, count)
    jitter = rng.normal(0, 0.08, (count, 4)) * np.hstack([extents[owner], extents[owner]])
    half = extents[owner] / 2
    boxes = np.hstack([centres[owner] - half, centres[owner] + half]) + jitter
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    scores = rng.uniform(0.05, 1.0, count).astype(np.float32)
    labels = rng.integers(0, classes, objects)[owner]
    flip = rng.random(count) < 0.1  # some duplicates disagree on the class
    labels[flip] = rng.integers(0, classes, int(flip.sum()))
    return boxes.astype(np.float32), scores, labels.astype(np.int64)


def best_of(repeats: int, run: Callable[[], Any]) -> float:
    """Fastest of ``repeats`` runs in CPU seconds (the minimum is least disturbed by other processes)."""
    times = []
    for _ in range(repeats):
        started = time.process_time()
        run()
        times.append(time.process_time() - started)
    return min(times)


def compare(batches: list[tuple[np.ndarray, ...]], repeats: int) -> dict[str, float]:
    """torchvision's ``batched_nms`` once per image (its natural use) against one ``box_nms`` call over all images
    (images x classes as groups, as the NMS stage calls it per batch), both with the same arrays."""
    tensors = [tuple(torch.from_numpy(a) for a in batch) for batch in batches]
    classes = int(max(batch[2].max() for batch in batches)) + 1
    boxes = np.concatenate([batch[0] for batch in batches])
    scores = np.concatenate([batch[1] for batch in batches])
    groups = np.concatenate([i * classes + batch[2] for i, batch in enumerate(batches)])

    def torchvision_alone() -> None:
        for image_boxes, image_scores, labels in tensors:
            batched_nms(image_boxes, image_scores, labels, IOU_THRESHOLD)

    def ours() -> None:
        box_nms(boxes, scores, IOU_THRESHOLD, groups)

    reference, measured = best_of(repeats, torchvision_alone), best_of(repeats, ours)
    kept = sum(len(batched_nms(*tensor[:2], tensor[2], IOU_THRESHOLD)) for tensor in tensors)
    ours_kept = int(box_nms(boxes, scores, IOU_THRESHOLD, groups).kept.sum())
    return {
        "boxes": len(boxes),
        "suppressed_share": 1 - kept / len(boxes),
        "same_kept_count": kept == ours_kept,
        "torchvision_cpu_s": reference,
        "ours_cpu_s": measured,
        "ratio": measured / reference,
    }


def stage_records(batches: list[tuple[np.ndarray, ...]]) -> list[ImageRecord]:
    source = Provenance("detector", "bench")
    records = []
    for i, (boxes, scores, labels) in enumerate(batches):
        regions = [
            Region("object", tuple(b), f"class{c}", source, score=float(s), id=f"r{i}-{j}")
            for j, (b, s, c) in enumerate(zip(boxes.tolist(), scores.tolist(), labels.tolist(), strict=True))
        ]
        records.append(ImageRecord(f"img{i}", f"file:///img{i}.jpg", 1000, 1000, "jpeg", regions=regions))
    return records


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.nms", description=__doc__)
    parser.add_argument("--boxes", type=int, default=100_000)
    parser.add_argument("--per-image", type=int, default=100)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--core", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    images = args.boxes // args.per_image
    per_image = [detections(rng, args.per_image, args.classes, 1000.0) for _ in range(images)]
    one_call = detections(rng, args.boxes, args.classes * 8, 20_000.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pinned({args.core}):
            result: dict[str, Any] = {
                "iou_threshold": IOU_THRESHOLD,
                "per_image": {"images": images, **compare(per_image, args.repeats)},
                "one_call": {"classes": args.classes * 8, **compare([one_call], args.repeats)},
            }
            records = stage_records(per_image)
            started = time.process_time()
            NmsFilter("nms", NmsOptions(cross_source_iou={})).process(records, None)
            stage = time.process_time() - started
    finally:
        torch.set_num_threads(threads)
    reference = result["per_image"]["torchvision_cpu_s"]
    result["nms_stage_end_to_end"] = {
        "cpu_s": stage,
        "ratio_to_torchvision": stage / reference,
        "drops": sum(len(r.dropped) for r in records),
    }
    result["targets"] = {
        "ratio": RATIO_TARGET,
        "met_per_image": result["per_image"]["ratio"] <= RATIO_TARGET,
        "met_one_call": result["one_call"]["ratio"] <= RATIO_TARGET,
    }
    return result


if __name__ == "__main__":
    from bench.report import print_table, save

    result = main(sys.argv[1:])
    print_table("nms", result)
    print(f"saved {save('nms', result)}")
