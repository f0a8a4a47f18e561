"""A test-only specialist that fails while its ``<state_dir>/<name>.fail`` file exists (a service that is down),
and logs each image it is given to ``<state_dir>/<name>.log`` (Ray workers share the folder)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from schemas.records import ImageRecord, Region
from specialists.base import Specialist


@dataclass(frozen=True)
class FlakyOptions:
    state_dir: str = ""


def attempts(state_dir: Path, stage: str) -> list[str]:
    """The image ids the stage was given, in order, over every run."""
    log = state_dir / f"{stage}.log"
    return log.read_text().split() if log.exists() else []


class FailsWhileMarked(Specialist):
    backend: ClassVar[str] = "fails_while_marked"
    produces: ClassVar[frozenset[str]] = frozenset({"regions"})
    Options: ClassVar[type] = FlakyOptions

    @property
    def model_id(self) -> str:
        return "fails-while-marked/1"

    def load(self) -> None:
        pass

    def annotate(self, images: list[np.ndarray], records: list[ImageRecord]) -> None:
        state = Path(self.options.state_dir)
        with open(state / f"{self.name}.log", "a") as log:
            log.write("".join(f"{record.image_id}\n" for record in records))
        if (state / f"{self.name}.fail").exists():
            raise RuntimeError(f"{self.name} is down")
        for record in records:
            record.regions.append(Region("object", (0, 0, 1, 1), "ok", self.provenance(), score=1.0))
