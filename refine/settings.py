"""Refinement settings as plain dataclasses (no torch import), validated from the profile's ``refine`` section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.bounds import Fraction, NonNegativeFloat, PositiveFloat, PositiveInt


@dataclass(frozen=True)
class TrainSettings:
    """Fine-tuning hyper-parameters (the brief: lr 1e-5..1e-6 for real checkpoints; higher overfits fast)."""

    learning_rate: PositiveFloat = 1e-5
    weight_decay: NonNegativeFloat = 0.01
    epochs: PositiveInt = 1
    batch_size: PositiveInt = 4
    warmup_fraction: Fraction = 0.1
    schedule: Literal["cosine", "linear"] = "cosine"
    max_grad_norm: PositiveFloat = 1.0
    freeze_vision: bool = False
    max_target_tokens: PositiveInt = 512
    seed: int = 0
