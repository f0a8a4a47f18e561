"""Fine-tuning Florence-2 on multitask samples: the per-worker training loop (torch only, no Ray).

AdamW with linear warm-up then cosine or linear decay, gradient clipping, bf16 autocast on GPU,
padded label positions masked to -100, optional frozen vision tower. ``engine/refine_loop.py``
runs :func:`train_epochs` inside Ray Train's ``TorchTrainer`` (DDP, one worker per GPU).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from refine.settings import TrainSettings

IGNORE_INDEX = -100

__all__ = ["IGNORE_INDEX", "TrainExample", "TrainSettings", "collate", "save_checkpoint", "train_epochs"]


@dataclass(frozen=True)
class TrainExample:
    """One decoded image with its prompt and target."""

    image: np.ndarray
    prefix: str
    target: str


def collate(processor: Any, examples: Sequence[TrainExample], max_target_tokens: int) -> dict[str, torch.Tensor]:
    """Processor inputs for a batch, with ``labels`` whose padding is masked to -100."""
    from PIL import Image

    inputs = processor(
        images=[Image.fromarray(e.image) for e in examples],
        text=[e.prefix for e in examples],
        return_tensors="pt",
        padding=True,
    )
    labels = processor.tokenizer(
        [e.target for e in examples],
        return_tensors="pt",
        padding=True,
        truncation=True,
        max_length=max_target_tokens,
    )
    ids = labels["input_ids"].clone()
    ids[labels["attention_mask"] == 0] = IGNORE_INDEX
    return {**inputs, "labels": ids}


def schedule_factor(step: int, total: int, warmup: int, kind: str) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine or linear decay to zero."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress))) if kind == "cosine" else max(0.0, 1 - progress)


def make_optimizer(model: torch.nn.Module, settings: TrainSettings, total_steps: int) -> tuple[Any, Any]:
    if settings.freeze_vision:
        for name, parameter in model.named_parameters():
            if "vision_tower" in name:
                parameter.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    warmup = int(settings.warmup_fraction * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: schedule_factor(step, total_steps, warmup, settings.schedule)
    )
    return optimizer, scheduler


def train_epochs(
    model: torch.nn.Module,
    processor: Any,
    batches: Callable[[int], Iterable[Sequence[TrainExample]]],
    settings: TrainSettings,
    total_steps: int,
    device: torch.device | str = "cpu",
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train for ``settings.epochs`` epochs over ``batches(epoch)``; return the loss of every step."""
    torch.manual_seed(settings.seed)
    optimizer, scheduler = make_optimizer(model, settings, total_steps)
    use_bf16 = torch.device(device).type == "cuda"
    model.train()
    losses: list[float] = []
    for epoch in range(settings.epochs):
        for examples in batches(epoch):
            batch = {k: v.to(device) for k, v in collate(processor, examples, settings.max_target_tokens).items()}
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_bf16):
                loss = model(**batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(len(losses), losses[-1])
    model.eval()
    return losses


def save_checkpoint(model: torch.nn.Module, processor: Any, directory: Path) -> Path:
    """Save weights as safetensors plus the processor, loadable with ``from_pretrained``."""
    directory.mkdir(parents=True, exist_ok=True)
    unwrapped = model.module if hasattr(model, "module") else model
    unwrapped.save_pretrained(directory, safe_serialization=True)
    processor.save_pretrained(directory)
    return directory
