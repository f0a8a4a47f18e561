"""The refinement quality bench scores what it should: clean annotations get AP 1, noise lowers it."""

from __future__ import annotations

from bench.refine_quality import average_precision, build_dataset


def test_clean_annotations_score_ap_one_and_noisy_ones_less(tmp_path) -> None:
    clean = build_dataset(tmp_path / "clean", tmp_path / "a", 6, 96, {"jitter": 0.0, "swap": 0.0, "miss": 0.0})
    scores = average_precision(tmp_path / "clean", 1, clean)
    assert scores["boxes"] == len(clean["annotations"]) and scores["AP"] > 0.99
    noisy = build_dataset(tmp_path / "noisy", tmp_path / "b", 6, 96, {"jitter": 0.15, "swap": 0.3, "miss": 0.3})
    assert noisy["annotations"] == clean["annotations"]  # the same truth
    noisy_scores = average_precision(tmp_path / "noisy", 1, noisy)
    assert noisy_scores["boxes"] < scores["boxes"] and noisy_scores["AP"] < 0.8


def test_no_boxes_scores_zero(tmp_path) -> None:
    truth = build_dataset(tmp_path / "ds", tmp_path / "img", 3, 64, {"jitter": 0.0, "swap": 0.0, "miss": 1.0})
    assert average_precision(tmp_path / "ds", 1, truth) == {
        "boxes": 0,
        "unknown_labels": 0,
        "AP": 0.0,
        "AP50": 0.0,
        "AR100": 0.0,
    }
