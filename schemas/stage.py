"""What a pipeline stage is: the contract between the engine and specialists, filters and refine.

A stage is a plain object. The engine creates it once per worker, calls ``setup()`` once (load
models there), then ``process()`` on batches of records. Stages know nothing of Ray.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from schemas.records import ImageRecord


@dataclass(frozen=True, slots=True)
class Resources:
    """What one worker of a stage needs, and how the engine batches and pools it."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    batch_size: int = 4
    pool_size: int = 1

    def __post_init__(self) -> None:
        if self.num_cpus < 0 or self.num_gpus < 0:
            raise ValueError("num_cpus and num_gpus must be >= 0")
        if self.batch_size < 1 or self.pool_size < 1:
            raise ValueError("batch_size and pool_size must be >= 1")


@runtime_checkable
class Stage(Protocol):
    """One step of the pipeline over batches of :class:`ImageRecord`."""

    name: str
    resources: Resources

    @property
    def needs_pixels(self) -> bool:
        """Whether ``process`` needs the decoded RGB images."""
        ...

    def fingerprint(self) -> str:
        """Identity of what this stage computes (model identity and settings), for provenance and refresh."""
        ...

    def setup(self) -> None:
        """Load models; called once per worker before the first batch."""
        ...

    def process(self, records: list[ImageRecord], images: list[np.ndarray] | None) -> None:
        """Add, change or drop annotations of ``records`` in place. ``images`` are (H, W, 3) uint8 RGB."""
        ...
