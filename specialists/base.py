"""The specialist interface: a model that adds annotations of one or more types to images."""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from schemas.records import ImageRecord, Provenance
from schemas.stage import BaseStage, StageKind


class Specialist(BaseStage):
    """Base class of every specialist.

    Subclasses set ``backend``, ``produces`` (annotation types it adds: "texts", "regions",
    "phrases", "masks"), ``requires`` (types that must exist before it runs) and ``Options``
    (a dataclass validated from the profile), and implement ``model_id``, ``load`` and ``annotate``.
    """

    kind: ClassVar[StageKind] = "specialists"
    needs_pixels: ClassVar[bool] = True
    holds_model: ClassVar[bool] = True

    @property
    @abstractmethod
    def model_id(self) -> str:
        """Model identity for provenance: id and revision, or a weights file hash."""

    def provenance(self, round_: int = 0) -> Provenance:
        return Provenance(source=self.name, model=self.model_id, round=round_)

    def process(self, records: list[ImageRecord], images: list[np.ndarray] | None) -> None:
        assert images is not None, f"{self.name} needs decoded images"
        self.setup()
        self.annotate(images, records)

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
