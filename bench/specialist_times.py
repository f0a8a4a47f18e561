"""Per-specialist time per image with the tiny test checkpoints (and the offline models), in one process.

Every specialist of ``tests.support.tiny_models.profile.tiny_profile`` runs in profile order over the sample
images at their own size, in batches like the profile's; each image carries one known object box so
region text and masks have work even when the random-init detectors find nothing. Times are wall
seconds per image after the model is loaded (load time reported apart), one torch thread.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from engine.config.profile import parse_config
from schemas.records import ImageRecord, Provenance, Region
from tests.support.tiny_models.chain import build_specialists, run_chain
from tests.support.tiny_models.profile import tiny_profile

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "images"


def sample_batch() -> tuple[list[ImageRecord], list[np.ndarray]]:
    images = [np.asarray(Image.open(path).convert("RGB")) for path in sorted(SAMPLES.glob("*.*"))]
    records = []
    for i, image in enumerate(images):
        height, width = image.shape[:2]
        record = ImageRecord(f"{i:064d}", f"sample://{i}", width, height, "jpg")
        box = (width * 0.2, height * 0.2, width * 0.7, height * 0.8)
        record.regions.append(Region("object", box, "object", Provenance("bench", "known-box", 0)))
        records.append(record)
    return records, images


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench specialist_times", description=__doc__)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(tiny_profile(Path(tmp)), profile="tiny")
        specialists = build_specialists(config)
        records, images = sample_batch()
        totals: dict[str, dict[str, float]] = {}
        for start in range(0, len(records), args.batch_size):
            chunk = slice(start, start + args.batch_size)
            times = run_chain(specialists, records[chunk], images[chunk])
            for name, entry in times.items():
                total = totals.setdefault(name, {"load_s": 0.0, "seconds": 0.0})
                total["load_s"] += entry["load_s"]
                total["seconds"] += entry["s_per_image"] * len(records[chunk])
    return {
        "images": len(records),
        "pixels_mean": float(np.mean([im.shape[0] * im.shape[1] for im in images])),
        "s_per_image": {name: round(t["seconds"] / len(records), 4) for name, t in totals.items()},
        "load_s": {name: round(t["load_s"], 3) for name, t in totals.items()},
    }
