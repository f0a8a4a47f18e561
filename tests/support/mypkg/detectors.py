# mypkg/detectors.py
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from schemas.records import ImageRecord, Region
from specialists.base import Specialist


@dataclass(frozen=True)
class BrightestBoxOptions:
    threshold: int = 200  # a pixel brighter than this (grey, 0-255) is bright


class BrightestBox(Specialist):
    """One `object` box around the bright pixels of each image, scored by their share of the image."""

    backend: ClassVar[str] = "brightest_box"
    produces: ClassVar[frozenset[str]] = frozenset({"regions"})
    Options: ClassVar[type] = BrightestBoxOptions

    @property
    def model_id(self) -> str:
        return "brightest-box/1"  # recorded in provenance; change it when the results would change

    def load(self) -> None:
        pass  # load a model here: once per worker

    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        for image, record in zip(images, records, strict=True):
            ys, xs = np.nonzero(image.mean(axis=2) > self.options.threshold)
            if len(xs):
                box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
                share = len(xs) / (image.shape[0] * image.shape[1])
                record.regions.append(Region("object", box, "bright", self.provenance(), score=share))
