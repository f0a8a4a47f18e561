"""Task mixing: how many copies of each task's samples one epoch of refinement training sees.

A task's weight ``w`` keeps each of its samples ``floor(w)`` times plus once more with probability
``w - floor(w)``: 1.0 keeps every sample once, 0.25 a quarter of them, 2.0 doubles the task, 0 (or a task
left out of the weights) drops it. The draw is seeded by image and ``seed`` (the engine passes the round),
so a rerun sees the same mix.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

import numpy as np

from refine.targets import FlorenceSample, florence_samples
from schemas.florence_tasks import TRAINING_TASKS
from schemas.records import ImageRecord


def check_task_weights(weights: Mapping[str, float]) -> None:
    """Raise ``ValueError`` naming the first unknown task or negative weight."""
    for task, weight in weights.items():
        if task not in TRAINING_TASKS:
            raise ValueError(f"task_weights: {task!r} is not one of {', '.join(TRAINING_TASKS)}")
        if weight < 0:
            raise ValueError(f"task_weights.{task}: weight {weight} is negative")


def _rng(image_id: str, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{image_id}:{seed}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def mixed_samples(record: ImageRecord, weights: Mapping[str, float], seed: int = 0) -> list[FlorenceSample]:
    """``record``'s samples for the weighted tasks, each repeated according to its task's weight."""
    tasks = [task for task in TRAINING_TASKS if weights.get(task, 0.0) > 0]
    rng = _rng(record.image_id, seed)
    out: list[FlorenceSample] = []
    for sample in florence_samples(record, tasks):
        weight = weights[sample.task]
        copies = math.floor(weight) + int(rng.random() < weight - math.floor(weight))
        out.extend([sample] * copies)
    return out
