"""The specialist interface: a model that adds annotations of one or more types to images."""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from schemas.pixel_limits import PixelLimits, refusal
from schemas.records import ImageRecord, Provenance, StageError
from schemas.stage import BaseStage, StageKind

# What a specialist's model may be given unless its backend says otherwise: a decoded 40 MP image and the
# float copies a preprocessor makes of it fit a worker's memory.
DEFAULT_MAX_PIXELS = 40_000_000


class Specialist(BaseStage):
    """Base class of every specialist.

    Subclasses set ``backend``, ``produces`` (annotation types it adds: "texts", "regions",
    "phrases", "masks"), ``requires`` (types that must exist before it runs) and ``Options``
    (a dataclass validated from the profile), and implement ``model_id``, ``load`` and ``annotate``.
    An image over the stage's pixel limits (``schemas/pixel_limits.py``) is not given to ``annotate``: it
    gets a :class:`StageError` saying its size.
    """

    kind: ClassVar[StageKind] = "specialists"
    needs_pixels: ClassVar[bool] = True
    holds_model: ClassVar[bool] = True
    pixel_limits: ClassVar[PixelLimits] = PixelLimits(max_pixels=DEFAULT_MAX_PIXELS)

    @property
    @abstractmethod
    def model_id(self) -> str:
        """Model identity for provenance: id and revision, or a weights file hash."""

    def provenance(self, round_: int = 0) -> Provenance:
        return Provenance(source=self.name, model=self.model_id, round=round_)

    def process(self, records: list[ImageRecord], images: list[np.ndarray] | None) -> None:
        assert images is not None, f"{self.name} needs decoded images"
        self.setup()
        accepted = [
            i for i, (image, record) in enumerate(zip(images, records, strict=True)) if self.accepts(image, record)
        ]
        if len(accepted) == len(images):
            self.annotate(images, records)
        elif accepted:
            self.annotate([images[i] for i in accepted], [records[i] for i in accepted])

    def accepts(self, image: np.ndarray, record: ImageRecord) -> bool:
        """Whether ``image`` is within the stage's pixel limits; if not, ``record`` gets a stage error saying why."""
        height, width = image.shape[:2]
        reason = refusal(self.limits, (width, height), self.model_input_size(width, height))
        if reason is not None:
            record.errors.append(StageError(self.name, reason))
        return reason is None

    @abstractmethod
    def load(self) -> None:
        """Load the model (once per worker)."""

    @abstractmethod
    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        """Add this specialist's annotations to ``records`` (aligned with ``images``) in place."""


def file_sha256(path: str | Path, limit: int | None = None) -> str:
    """sha256 of a weights file (first ``limit`` bytes when given), for provenance."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        remaining = limit
        while chunk := handle.read(1 << 20 if remaining is None else min(1 << 20, remaining)):
            digest.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
                if remaining <= 0:
                    break
    return digest.hexdigest()
