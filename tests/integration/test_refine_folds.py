"""A cross-fitted refinement round through local Ray: one Ray Train model per fold, each annotating only its fold."""

from __future__ import annotations

import pytest

from engine.refine_loop import DONE, refine_dataset
from engine.store.manifest import read_manifest
from engine.store.reader import iter_records
from refine.folds import fold_of
from tests.integration.test_refine_rounds import local_ray, seed_version, tiny_config  # noqa: F401


@pytest.fixture(scope="module")
def cross_fitted(local_ray, tiny_florence2_dir, tmp_path_factory):  # noqa: F811
    """Four images (ids 0..3: image 0 in fold 1, images 1-3 in fold 0), one round with two folds."""
    tmp = tmp_path_factory.mktemp("folds")
    root = tmp / "ds"
    seed_version(root, tmp / "images", count=4)
    (result,) = refine_dataset(root, tiny_config(tiny_florence2_dir, folds=2), rounds=1, progress=lambda _: None)
    return root, result


def test_each_fold_trains_without_its_images_and_annotates_only_them(cross_fitted) -> None:
    root, result = cross_fitted
    ids = [f"{i:064x}" for i in range(4)]
    assert [fold_of(i, 2) for i in ids] == [1, 0, 0, 0]
    metrics = read_manifest(root).extra["refine_metrics"]
    assert metrics["folds"] == 2
    # Each image gives 2 samples (<CAPTION>, <OD>): fold 0 trains on image 0 alone, fold 1 on images 1-3.
    assert [(f["fold"], f["train_samples"], f["annotated_images"]) for f in metrics["per_fold"]] == [
        (0, 2, 3),
        (1, 6, 1),
    ]
    for fold in (0, 1):
        assert (root / "refine" / "round-01" / f"fold-{fold}" / DONE).is_file()
    models = read_manifest(root).models
    assert {"refine_round_1_fold_0", "refine_round_1_fold_1"} <= set(models)
    assert sorted(r.image_id for r in iter_records(root, version=2)) == ids
    assert result.images == 4 and not result.resumed
