"""Deterministic train/validation assignment by image id (stable across runs, versions and machines)."""

from __future__ import annotations

import hashlib
from typing import Literal

Split = Literal["train", "val"]


def split_of(image_id: str, val_fraction: float = 0.1) -> Split:
    """``val`` for about ``val_fraction`` of image ids, always the same ones for the same id."""
    digest = hashlib.sha256(f"fld-engine-split:{image_id}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return "val" if position < val_fraction else "train"
