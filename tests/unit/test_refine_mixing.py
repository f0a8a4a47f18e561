"""Task mixing weights decide how often each task's samples appear in an epoch."""

from __future__ import annotations

import pytest

from refine.mixing import check_task_weights, mixed_samples
from schemas.records import ImageRecord, Provenance, Region, Text

P = Provenance("test", "m", 0)


def record(i: int) -> ImageRecord:
    r = ImageRecord(f"{i:064x}", "x", 100, 100, "png")
    r.texts = [Text("brief", "a red car", P)]
    r.regions = [Region("object", (1, 1, 50, 50), "car", P)]
    return r


def test_weight_one_keeps_every_sample_once_and_missing_tasks_are_left_out() -> None:
    samples = mixed_samples(record(0), {"<CAPTION>": 1.0, "<OD>": 1.0})
    assert [s.task for s in samples] == ["<CAPTION>", "<OD>"]
    assert [s.task for s in mixed_samples(record(0), {"<OD>": 1.0})] == ["<OD>"]


def test_integer_weights_repeat_and_fractions_keep_that_share() -> None:
    assert [s.task for s in mixed_samples(record(0), {"<OD>": 2.0})] == ["<OD>", "<OD>"]
    kept = sum(len(mixed_samples(record(i), {"<CAPTION>": 0.25})) for i in range(400))
    assert 70 <= kept <= 130


def test_the_draw_is_the_same_for_the_same_image_and_seed() -> None:
    draws = [[len(mixed_samples(record(i), {"<CAPTION>": 0.5}, seed=3)) for i in range(50)] for _ in range(2)]
    assert draws[0] == draws[1]
    assert draws[0] != [len(mixed_samples(record(i), {"<CAPTION>": 0.5}, seed=4)) for i in range(50)]


def test_unknown_task_and_negative_weight_are_errors() -> None:
    with pytest.raises(ValueError, match="'<NOPE>' is not one of"):
        check_task_weights({"<NOPE>": 1.0})
    with pytest.raises(ValueError, match=r"weight -1\.0 is negative"):
        check_task_weights({"<OD>": -1.0})
