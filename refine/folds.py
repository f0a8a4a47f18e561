"""Cross-fitted re-annotation: images split into k folds by a stable hash of their id.

A round trains one model per fold on every image *outside* that fold, and that model annotates only its own
fold, so no prediction comes from a model that saw the image's labels: a model that re-annotates its own
training images learns to repeat their noise, and its "agreement" confirms nothing. With ``k = 1`` one model
trains on everything and annotates everything (the cheaper choice for a huge corpus, where one image's labels
weigh little in training).

Round k's model for fold i starts from round k-1's model for fold i, which never saw fold i either.
"""

from __future__ import annotations

import hashlib


def fold_of(image_id: str, folds: int) -> int:
    """The fold of ``image_id`` among ``folds``: stable across runs, machines and Python versions."""
    if folds < 1:
        raise ValueError(f"folds must be at least 1, got {folds}")
    if folds == 1:
        return 0
    return int(hashlib.sha256(image_id.encode()).hexdigest()[:16], 16) % folds


def trains_on(image_id: str, fold: int, folds: int) -> bool:
    """Whether fold ``fold``'s model trains on ``image_id`` (every image outside the fold; all when ``folds`` is 1)."""
    return folds == 1 or fold_of(image_id, folds) != fold


def annotates(image_id: str, fold: int, folds: int) -> bool:
    """Whether fold ``fold``'s model annotates ``image_id`` (the images of its own fold)."""
    return fold_of(image_id, folds) == fold
