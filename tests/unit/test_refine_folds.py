"""Cross-fitting: every image is annotated by exactly one model per round, and never by one that trained on it."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.config.profile import parse_config
from engine.config.typed_config import ConfigError
from engine.refine_loop import FoldSelection, _read_row_groups
from refine.folds import annotates, fold_of, trains_on
from schemas.arrow import records_to_table
from schemas.records import ImageRecord

IDS = [f"{i:064x}" for i in range(400)]


def test_fold_of_is_stable_and_balanced() -> None:
    assert [fold_of(f"{i:064x}", 2) for i in range(8)] == [1, 0, 0, 0, 0, 1, 0, 1]
    counts = [sum(fold_of(i, 3) == f for i in IDS) for f in range(3)]
    assert sum(counts) == 400 and min(counts) > 100  # about a third each


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_no_image_is_annotated_by_a_model_that_trained_on_it(folds: int) -> None:
    for image_id in IDS:
        annotators = [f for f in range(folds) if annotates(image_id, f, folds)]
        assert len(annotators) == 1  # annotated once per round
        assert not trains_on(image_id, annotators[0], folds)  # by a model that never saw it
        assert sum(trains_on(image_id, f, folds) for f in range(folds)) == folds - 1  # the others trained on it


def test_one_fold_trains_on_and_annotates_everything() -> None:
    assert all(trains_on(i, 0, 1) and annotates(i, 0, 1) for i in IDS)


def test_folds_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="folds must be at least 1, got 0"):
        fold_of(IDS[0], 0)
    assert parse_config({}).refine.folds == 2
    with pytest.raises(ConfigError, match=r"refine\.folds: must be >= 1, got 0"):
        parse_config({"refine": {"folds": 0}})


def test_a_folds_training_read_and_its_annotation_read_split_a_shard(tmp_path) -> None:
    records = [ImageRecord(image_id, f"/x/{n}.png", 8, 8, "png") for n, image_id in enumerate(IDS[:8])]
    pq.write_table(records_to_table(records), tmp_path / "part.parquet", row_group_size=8)
    group = pa.table({"path": [str(tmp_path / "part.parquet")], "row_group": [0]})
    for fold in (0, 1):
        trained = _read_row_groups(group, FoldSelection(fold, 2, annotating=False)).column("image_id").to_pylist()
        annotated = _read_row_groups(group, FoldSelection(fold, 2, annotating=True)).column("image_id").to_pylist()
        assert sorted(trained + annotated) == sorted(IDS[:8]) and not set(trained) & set(annotated)
        assert all(fold_of(i, 2) == fold for i in annotated)
    assert _read_row_groups(group, FoldSelection(0, 1, annotating=True)).num_rows == 8
