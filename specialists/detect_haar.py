"""OpenCV Haar cascades as an offline object detector (faces, bodies, cat faces, licence plates).

A classical detector, not a substitute for a learned one: it is the embedded default because its
cascades ship inside opencv-python-headless 4.x, and provenance names the cascade file and its hash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from schemas.bounds import Fraction, NonNegativeInt, PositiveFloat, PositiveInt
from schemas.metrics import HAAR_LEVEL_WEIGHT
from schemas.records import ImageRecord, Provenance, Region
from schemas.stage import WeightsCheck
from specialists.base import Specialist, file_sha256

CASCADES = {
    "haarcascade_frontalface_default.xml": "face",
    "haarcascade_fullbody.xml": "person",
    "haarcascade_frontalcatface.xml": "cat face",
    "haarcascade_russian_plate_number.xml": "licence plate",
}


def cascade_dir() -> Path:
    return Path(cv2.data.haarcascades)


def level_weight_to_score(weight: float, scale: float = 2.0) -> float:
    """A cascade's final-stage level weight (its margin over the stage threshold) squashed to 0..1.

    Logistic with ``scale`` 2: a margin of 0 gives 0.5, 2 gives 0.73, 6 gives 0.95; negative margins
    (kept only by neighbour grouping) fall below 0.5.
    """
    return 1.0 / (1.0 + math.exp(-weight / scale))


@dataclass(frozen=True)
class HaarOptions:
    """``cascades``: cascade file name -> label. ``min_size_fraction``: smallest box side as a fraction
    of the shorter image side; ``max_side``: images are downscaled to this longer side for speed."""

    cascades: dict[str, str] = field(default_factory=lambda: dict(CASCADES))
    scale_factor: PositiveFloat = 1.1
    min_neighbors: NonNegativeInt = 5
    min_size_fraction: Fraction = 0.04
    max_side: PositiveInt = 1024


class HaarDetector(Specialist):
    backend: ClassVar[str] = "haar"
    produces: ClassVar[frozenset[str]] = frozenset({"regions"})
    Options: ClassVar[type] = HaarOptions

    def __init__(self, name: str, options: HaarOptions, resources=None) -> None:
        super().__init__(name, options, resources)
        self._classifiers: list[tuple[str, Any]] = []
        self._model_id: str | None = None

    def _cascades(self) -> list[tuple[Path, str]]:
        """(cascade file, label) in file-name order, so the order the profile lists them in changes nothing."""
        return [(cascade_dir() / file, label) for file, label in sorted(self.options.cascades.items())]

    def _paths(self) -> list[Path]:
        return [path for path, _ in self._cascades()]

    @property
    def model_id(self) -> str:
        if self._model_id is None:
            parts = [f"{p.name}@{file_sha256(p)[:8]}" if p.is_file() else f"{p.name}@missing" for p in self._paths()]
            self._model_id = f"opencv-{cv2.__version__}/" + "+".join(parts)
        return self._model_id

    def check_weights(self) -> WeightsCheck:
        missing = [p.name for p in self._paths() if not p.is_file()]
        detail = f"missing {', '.join(missing)}" if missing else "cascades bundled with opencv-python-headless"
        return WeightsCheck(self.name, self.backend, self.model_id, (str(cascade_dir()),), not missing, detail)

    def load(self) -> None:
        self._classifiers = []
        for path, label in self._cascades():
            classifier = cv2.CascadeClassifier(str(path))
            if classifier.empty():
                raise FileNotFoundError(f"{self.name}: OpenCV could not load the cascade {path}")
            self._classifiers.append((label, classifier))

    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        provenance = self.provenance()
        for image, record in zip(images, records, strict=True):
            record.regions.extend(self.detect(image, provenance))

    def detect(self, image: np.ndarray, provenance: Provenance) -> list[Region]:
        """Every cascade on one RGB image; boxes in the original image's pixels."""
        height, width = image.shape[:2]
        scale = min(1.0, self.options.max_side / max(height, width))
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            gray = cv2.resize(gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        side = max(8, round(self.options.min_size_fraction * min(gray.shape)))
        regions = []
        for label, classifier in self._classifiers:
            boxes, _, weights = classifier.detectMultiScale3(
                gray,
                scaleFactor=self.options.scale_factor,
                minNeighbors=self.options.min_neighbors,
                minSize=(side, side),
                outputRejectLevels=True,
            )
            for (x, y, w, h), weight in zip(np.reshape(boxes, (-1, 4)), np.ravel(weights), strict=True):
                box = (x / scale, y / scale, min((x + w) / scale, width), min((y + h) / scale, height))
                score = level_weight_to_score(float(weight))
                regions.append(
                    Region("object", box, label, provenance, score=score, metrics={HAAR_LEVEL_WEIGHT: float(weight)})
                )
        return regions
