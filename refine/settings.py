"""Refinement settings as plain dataclasses (no torch import), validated from the profile's ``refine`` section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class TrainSettings:
    """Fine-tuning hyper-parameters (the brief: lr 1e-5..1e-6 for real checkpoints; higher overfits fast)."""

    learning_rate: float = 1e-5
    weight_decay: float = 0.01
    epochs: int = 1
    batch_size: int = 4
    warmup_fraction: float = 0.1
    schedule: Literal["cosine", "linear"] = "cosine"
    max_grad_norm: float = 1.0
    freeze_vision: bool = False
    max_target_tokens: int = 512
    seed: int = 0
