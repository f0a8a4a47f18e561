"""Deterministic train/validation assignment by image id (stable across runs, versions and machines)."""

from __future__ import annotations

import hashlib
from typing import Literal

Split = Literal["train", "val"]


def split_position(image_id: str) -> float:
    """Where an image id falls in [0, 1): images below the validation fraction are validation images."""
    digest = hashlib.sha256(f"fld-engine-split:{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(image_id: str, val_fraction: float = 0.1) -> Split:
    """``val`` for about ``val_fraction`` of image ids, always the same ones for the same id."""
    return "val" if split_position(image_id) < val_fraction else "train"
