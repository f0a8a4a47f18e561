"""The refinement experiment scores what it should and counts what the filters removed, by noise tag."""

from __future__ import annotations

import pytest

from bench.annotation_noise import CORRECT, NoiseRates
from bench.refine_quality import (
    average_precision,
    epoch_losses,
    filter_accounting,
    filter_targets,
    generate,
    imported_records,
    main,
)

NO_NOISE = NoiseRates(jitter=0, relabel=0, miss=0, spurious=0, junk_caption=0)


def test_clean_annotations_score_ap_one_and_noisy_ones_less(tmp_path) -> None:
    clean = generate(tmp_path / "clean", 10, 96, 0, NO_NOISE)
    scores = average_precision(imported_records(clean), clean.truth)
    assert scores["boxes"] == len(clean.truth["annotations"]) and scores["AP"] > 0.99
    noisy = generate(tmp_path / "noisy", 10, 96, 0, NoiseRates(jitter=0.5, miss=0.3, relabel=0.3))
    assert noisy.truth == clean.truth
    noisy_scores = average_precision(imported_records(noisy), noisy.truth)
    assert noisy_scores["AP"] < 0.8 and noisy_scores["AR100"] < scores["AR100"]


def test_no_boxes_score_zero(tmp_path) -> None:
    generated = generate(tmp_path, 3, 64, 0, NoiseRates(miss=1.0, spurious=0))
    assert average_precision(imported_records(generated), generated.truth) == {
        "boxes": 0,
        "unknown_labels": 0,
        "AP": 0.0,
        "AP50": 0.0,
        "AR100": 0.0,
    }


def test_accounting_traces_each_drop_to_its_injected_tag(tmp_path) -> None:
    generated = generate(tmp_path, 12, 96, 0, NoiseRates(spurious=1.0, junk_caption=0.5))
    records = imported_records(generated)
    spurious = [(r, a) for r in records for a in r.regions if a.score is not None and a.score < 0.3]
    for record, region in spurious:
        record.drop(region, stage="confidence", rule="min_score")
    record = next(r for r in records if r.texts)
    record.drop(record.texts[0], stage="text", rule="boilerplate")
    table = filter_accounting(generated, records)
    tags = generated.noisy.tags()
    assert {tag: row["imported"] for tag, row in table.items()} == {t: n for t, n in tags.items() if t != "missed"}
    assert sum(row["rules"].get("confidence/min_score", 0) for row in table.values()) == len(spurious)
    assert sum(row["rules"].get("text/boilerplate", 0) for row in table.values()) == 1
    assert table[CORRECT]["removed"] <= table[CORRECT]["imported"]


def test_filter_targets_read_spurious_and_junk_against_correct() -> None:
    table = {
        "correct": {"imported": 100, "removed": 4},
        "caption_correct": {"imported": 100, "removed": 2},
        "spurious_background": {"imported": 10, "removed": 7},
        "spurious_fragment": {"imported": 10, "removed": 10},
        "caption_junk": {"imported": 20, "removed": 19},
        "jittered": {"imported": 50, "removed": 50},
    }
    assert filter_targets(table) == {
        "spurious_and_junk_removed": 0.9,
        "correct_lost": 0.03,
        "correct_boxes_lost": 0.04,
        "correct_captions_lost": 0.02,
        "met": True,
    }


def test_epoch_losses_average_the_steps_of_each_epoch() -> None:
    assert epoch_losses([4.0, 2.0, 3.0, 1.0, 2.0, 0.0], 3) == [3.0, 2.0, 1.0]
    assert epoch_losses([], 3) == []


def test_the_filters_remove_spurious_boxes_and_junk_captions(tmp_path) -> None:
    result = main(["--images", "40", "--filters-only", "--work", str(tmp_path / "work")])
    assert not (tmp_path / "work").exists()
    targets = result["filters"]["targets"]
    assert targets["spurious_and_junk_removed"] >= 0.8 and targets["correct_lost"] <= 0.05
    assert result["filters"]["caption_junk"]["removed"] == result["injected"]["caption_junk"]
    assert set(result["versions"]) == {"v0 (imported, before filters)", "v1 (after filters)"}


@pytest.mark.slow
def test_the_experiment_runs_a_refinement_round_end_to_end(tmp_path) -> None:
    argv = ["--images", "8", "--size", "64", "--rounds", "1", "--epochs", "2", "--model", "tiny"]
    result = main([*argv, "--work", str(tmp_path / "work")])
    round_1 = result["versions"]["v2 (round 1)"]
    losses = round_1["loss_per_fold_epoch"]
    assert len(losses) == 2 * 2 and all(loss > 0 for loss in losses)
    assert {"AP", "AP50", "AR100", "merge"} <= set(round_1)
    assert result["ap_gain_points"] == pytest.approx(
        100 * (round_1["AP"] - result["versions"]["v1 (after filters)"]["AP"])
    )
