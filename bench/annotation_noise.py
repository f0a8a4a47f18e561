"""Noisy initial annotations of generated scenes, every injected error tagged, written as COCO JSON.

The noise imitates how a detector and a captioner err, each error kind at a set rate:

- ``jittered``: a true object whose box edges moved (Gaussian, ``jitter_sigma`` of the box side);
- ``relabelled``: a true object with another class's label (may also be jittered: ``jittered+relabelled``);
- ``missed``: a true object left out (listed in :attr:`NoisyAnnotations.missed`);
- spurious boxes, three failure modes: ``spurious_background`` (a box on bare background), ``spurious_duplicate``
  (a second box on a true object, IoU 0.55-0.85 with it, same label) and ``spurious_fragment`` (a box a few
  pixels wide);
- ``junk`` captions: boilerplate, file names, repeated words, word lists, symbol noise, in place of the
  scene's caption.

Scores are a detector's: true objects draw from Beta(5, 1.5) (mean 0.77), spurious boxes from Beta(1.5, 5)
(mean 0.23), as a detector's false positives score lower than its hits on average but overlap them. Every
other annotation is tagged ``correct``. Pure and seeded: the same scenes and seed give the same file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.scenes import CLASSES, Box, Scene

CORRECT = "correct"
SPURIOUS = ("spurious_background", "spurious_duplicate", "spurious_fragment")
JUNK_CAPTIONS = (
    "IMG_{n:04d}.JPG",
    "DSC{n:05d}",
    "stock photo of colourful geometric shapes, royalty free",
    "click here to enlarge",
    "{word} {word} {word} {word} {word}",
    "square, circle, triangle, diamond, sign",
    "#### {n} ****  ////",
    "https://example.com/images/{n}.png",
    "image {n} of 500",
)


@dataclass(frozen=True)
class NoiseRates:
    """Probabilities per true object (``jitter``, ``relabel``, ``miss``), spurious boxes per image (mean of a
    Poisson draw, split among the three modes by ``spurious_mix``) and the chance a caption is junk."""

    jitter: float = 0.4
    jitter_sigma: float = 0.12
    relabel: float = 0.15
    miss: float = 0.15
    spurious: float = 0.6
    spurious_mix: tuple[float, float, float] = (0.5, 0.3, 0.2)
    junk_caption: float = 0.3


@dataclass
class NoisyAnnotations:
    """The noisy annotations as COCO ``instances`` and ``captions`` dicts; each annotation has a ``noise`` tag."""

    instances: dict[str, Any]
    captions: dict[str, Any]
    missed: list[dict[str, Any]] = field(default_factory=list)

    def tags(self) -> dict[str, int]:
        """How many annotations carry each tag (missed objects under ``missed``)."""
        counts: dict[str, int] = {}
        for annotation in [*self.instances["annotations"], *self.captions["annotations"]]:
            key = annotation["noise"] if "bbox" in annotation else f"caption_{annotation['noise']}"
            counts[key] = counts.get(key, 0) + 1
        counts["missed"] = len(self.missed)
        return counts

    def write(self, folder: Path) -> tuple[Path, Path]:
        """``instances.json`` and ``captions.json`` in ``folder`` (COCO layout; ``noise`` is an extra key)."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = folder / "instances.json", folder / "captions.json"
        for path, data in zip(paths, (self.instances, self.captions), strict=True):
            path.write_text(json.dumps(data))
        return paths


def categories() -> list[dict[str, Any]]:
    return [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(CLASSES)]


def coco_box(box: Box) -> list[float]:
    x0, y0, x1, y1 = box
    return [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]


def ground_truth(scenes: list[Scene], file_names: list[str]) -> dict[str, Any]:
    """The scenes' true objects as a COCO ``instances`` dict (image ids from 1, in scene order)."""
    images, annotations = [], []
    for image_id, (scene, name) in enumerate(zip(scenes, file_names, strict=True), start=1):
        height, width = scene.pixels.shape[:2]
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
        for obj in scene.objects:
            x, y, w, h = coco_box(obj.box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": CLASSES.index(obj.label) + 1,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    return {"images": images, "annotations": annotations, "categories": categories()}


def _clip(box: np.ndarray, width: int, height: int) -> Box:
    x0, y0, x1, y1 = np.clip(box, 0, [width, height, width, height])
    return (float(x0), float(y0), float(max(x1, x0 + 1)), float(max(y1, y0 + 1)))


def _jitter(box: Box, sigma: float, rng: np.random.Generator, width: int, height: int) -> Box:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    moved = np.array(box) + rng.normal(0, sigma, 4) * np.array([w, h, w, h])
    return _clip(moved, width, height)


def _duplicate(box: Box, rng: np.random.Generator, width: int, height: int) -> Box:
    """A box overlapping ``box`` with IoU in about 0.55-0.85: shifted and rescaled a little."""
    from schemas.boxes import box_iou

    for _ in range(50):
        candidate = _jitter(box, 0.1, rng, width, height)
        if 0.55 <= box_iou(box, candidate) <= 0.85:
            return candidate
    return candidate


def _background(objects: list[Box], rng: np.random.Generator, width: int, height: int) -> Box:
    """A box of object size that overlaps no true object (or as little as 50 tries find)."""
    from schemas.boxes import box_iou

    best, best_overlap = None, 2.0
    for _ in range(50):
        side = rng.uniform(0.15, 0.35) * width
        x0, y0 = rng.uniform(0, width - side), rng.uniform(0, height - side)
        box = (float(x0), float(y0), float(x0 + side), float(y0 + side * rng.uniform(0.8, 1.25)))
        box = _clip(np.array(box), width, height)
        overlap = max((box_iou(box, other) for other in objects), default=0.0)
        if overlap < best_overlap:
            best, best_overlap = box, overlap
        if overlap == 0.0:
            break
    assert best is not None
    return best


def _fragment(rng: np.random.Generator, width: int, height: int) -> Box:
    side = rng.uniform(2, 6)
    x0, y0 = rng.uniform(0, width - side), rng.uniform(0, height - side)
    return (float(x0), float(y0), float(x0 + side), float(y0 + side * rng.uniform(0.7, 1.4)))


def _junk(rng: np.random.Generator) -> str:
    template = JUNK_CAPTIONS[int(rng.integers(len(JUNK_CAPTIONS)))]
    return template.format(n=int(rng.integers(10_000)), word=CLASSES[int(rng.integers(len(CLASSES)))])


def inject_noise(
    scenes: list[Scene], file_names: list[str], rates: NoiseRates = NoiseRates(), seed: int = 0
) -> NoisyAnnotations:
    """The scenes' truth with ``rates`` of each error injected; image ids match :func:`ground_truth`."""
    rng = np.random.default_rng(seed)
    instances: dict[str, Any] = {"images": [], "annotations": [], "categories": categories()}
    captions: dict[str, Any] = {"images": instances["images"], "annotations": []}
    noisy = NoisyAnnotations(instances, captions)

    def add(image_id: int, label: str, box: Box, tag: str, true_score: bool) -> None:
        x, y, w, h = coco_box(box)
        score = rng.beta(5, 1.5) if true_score else rng.beta(1.5, 5)
        instances["annotations"].append(
            {
                "id": len(instances["annotations"]) + 1,
                "image_id": image_id,
                "category_id": CLASSES.index(label) + 1,
                "bbox": [x, y, w, h],
                "area": round(w * h, 2),
                "iscrowd": 0,
                "score": round(float(score), 4),
                "noise": tag,
            }
        )

    for image_id, (scene, name) in enumerate(zip(scenes, file_names, strict=True), start=1):
        height, width = scene.pixels.shape[:2]
        instances["images"].append({"id": image_id, "file_name": name, "width": width, "height": height})
        annotated = []
        for obj in scene.objects:
            if rng.random() < rates.miss:
                noisy.missed.append({"image_id": image_id, "label": obj.label, "bbox": coco_box(obj.box)})
                continue
            tags, box, label = [], obj.box, obj.label
            if rng.random() < rates.jitter:
                box, tags = _jitter(box, rates.jitter_sigma, rng, width, height), ["jittered"]
            if rng.random() < rates.relabel:
                label = str(rng.choice([c for c in CLASSES if c != obj.label]))
                tags.append("relabelled")
            add(image_id, label, box, "+".join(tags) or CORRECT, true_score=True)
            annotated.append(obj)
        for _ in range(int(rng.poisson(rates.spurious))):
            mode = SPURIOUS[int(rng.choice(len(SPURIOUS), p=np.array(rates.spurious_mix) / sum(rates.spurious_mix)))]
            if mode == "spurious_duplicate" and annotated:
                obj = annotated[int(rng.integers(len(annotated)))]
                add(image_id, obj.label, _duplicate(obj.box, rng, width, height), mode, true_score=False)
            elif mode == "spurious_fragment":
                label = CLASSES[int(rng.integers(len(CLASSES)))]
                add(image_id, label, _fragment(rng, width, height), mode, true_score=False)
            else:
                label = CLASSES[int(rng.integers(len(CLASSES)))]
                boxes = [o.box for o in scene.objects]
                add(image_id, label, _background(boxes, rng, width, height), "spurious_background", true_score=False)
        junk = rng.random() < rates.junk_caption
        captions["annotations"].append(
            {
                "id": len(captions["annotations"]) + 1,
                "image_id": image_id,
                "caption": _junk(rng) if junk else scene.caption,
                "noise": "junk" if junk else CORRECT,
            }
        )
    return noisy


def rates_dict(rates: NoiseRates) -> dict[str, Any]:
    return asdict(rates)
