"""A profile that points every model-backed specialist at tiny random-init checkpoints built on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from specialists.base import file_sha256
from tests.support.tiny_models.blip import build_tiny_blip
from tests.support.tiny_models.causal_lm import build_tiny_causal_lm
from tests.support.tiny_models.clip import build_tiny_clip
from tests.support.tiny_models.detr import build_tiny_detr
from tests.support.tiny_models.florence import build_tiny_florence2
from tests.support.tiny_models.grounding_dino import build_tiny_grounding_dino
from tests.support.tiny_models.owlv2 import build_tiny_owlv2
from tests.support.tiny_models.sam import build_tiny_sam
from tests.support.tiny_models.sam_ultralytics import IMAGE_SIZE as MOBILE_SAM_SIZE
from tests.support.tiny_models.sam_ultralytics import build_tiny_mobile_sam
from tests.support.tiny_models.yolo import build_tiny_yolo

SMALL = {"num_cpus": 0.25, "batch_size": 4, "pool_size": 1}


def build_tiny_model_dirs(tmp_dir: Path) -> dict[str, str]:
    """Build (once per directory) each tiny checkpoint under ``tmp_dir``; name -> checkpoint directory."""
    builders = {
        "florence2": build_tiny_florence2,
        "blip": build_tiny_blip,
        "clip": build_tiny_clip,
        "causal_lm": build_tiny_causal_lm,
        "owlv2": build_tiny_owlv2,
        "grounding_dino": build_tiny_grounding_dino,
        "sam": build_tiny_sam,
        "detr": build_tiny_detr,
    }
    dirs: dict[str, str] = {}
    for name, build in builders.items():
        directory = Path(tmp_dir) / name
        if not (directory / "config.json").is_file():
            build(directory)
        dirs[name] = str(directory)
    yolo = Path(tmp_dir) / "yolo" / "tiny-yolov8n.pt"
    if not yolo.is_file():
        build_tiny_yolo(yolo)
    dirs["yolo"] = str(yolo)
    mobile_sam = Path(tmp_dir) / "sam_ultralytics" / "tiny-mobile_sam.pt"  # ultralytics reads the name's ending
    if not mobile_sam.is_file():
        build_tiny_mobile_sam(mobile_sam)
    dirs["sam_ultralytics"] = str(mobile_sam)
    return dirs


def tiny_profile(tmp_dir: Path) -> dict[str, Any]:
    """A profile mapping (for ``parse_config``) with every backend on tiny models, in dependency order.

    Captions and boxes first (BLIP, Florence-2, OCR, Haar, YOLO, DETR), grounding of the captions' phrases (OWLv2, then
    Grounding DINO), then region text over the boxes, masks (GrabCut for each image's first object box, transformers SAM
    for the grounded phrase boxes, ultralytics SAM for the object boxes left), and the aggregator last (it reads
    captions, region texts and OCR). Every mask stage is given boxes no earlier one took, so each one has work.
    """
    dirs = build_tiny_model_dirs(tmp_dir)
    florence = {"model": dirs["florence2"], "max_new_tokens": 12, "num_beams": 1, "describe_regions": 2}
    specialists = [
        {
            "name": "blip",
            "backend": "blip",
            "resources": SMALL,
            "options": {"model": dirs["blip"], "max_new_tokens": 8},
        },
        {"name": "florence2", "backend": "florence2", "resources": SMALL, "options": florence},
        {"name": "ocr", "backend": "rapidocr", "resources": SMALL},
        {"name": "haar", "backend": "haar", "resources": SMALL},
        {
            "name": "yolo",
            "backend": "ultralytics",
            "resources": SMALL,
            # The tiny .pt files are pickles we built: one stage trusts its file, the other pins its sha256.
            "options": {
                "weights": dirs["yolo"],
                "trust_pickle_weights": True,
                "min_score": 0.0,
                "image_size": 64,
                "max_detections": 3,
            },
        },
        {
            "name": "detr",
            "backend": "hf_detection",
            "resources": SMALL,
            "options": {"model": dirs["detr"], "min_score": 0.0, "max_detections": 3},
        },
        {
            "name": "grounding",
            "backend": "hf_grounding",
            "resources": SMALL,
            "options": {"model": dirs["owlv2"], "min_score": 0.0, "max_regions": 2},
        },
        {
            "name": "grounding_dino",
            "backend": "grounding_dino",
            "resources": SMALL,
            # A random-init model's scores mean nothing: thresholds of 0 keep every box, so every phrase is grounded.
            "options": {"model": dirs["grounding_dino"], "min_score": 0.0, "box_threshold": 0.0, "max_regions": 2},
        },
        {
            "name": "region_text",
            "backend": "clip_region_text",
            "resources": SMALL,
            "options": {"model": dirs["clip"], "captioner": dirs["blip"], "caption_max_new_tokens": 6},
        },
        {"name": "grabcut", "backend": "grabcut", "resources": SMALL, "options": {"max_regions": 1}},
        {"name": "sam", "backend": "sam_hf", "resources": SMALL, "options": {"model": dirs["sam"], "kinds": []}},
        {
            "name": "sam_ultralytics",
            "backend": "sam_ultralytics",
            "resources": SMALL,
            "options": {
                "weights": dirs["sam_ultralytics"],
                "weights_sha256": file_sha256(dirs["sam_ultralytics"]),
                "image_size": MOBILE_SAM_SIZE,
                "phrases": False,
            },
        },
        {
            "name": "aggregator",
            "backend": "llm_aggregator",
            "resources": SMALL,
            "options": {"model": dirs["causal_lm"], "max_new_tokens": 12},
        },
    ]
    return {"specialists": specialists, "writer": {"rows_per_shard": 100, "row_group_rows": 32}}
