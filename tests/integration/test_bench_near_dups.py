"""The near_dups benchmark at tiny sizes: it reports what it promises, and its scoring is right."""

from __future__ import annotations

import numpy as np
import pytest

from bench import near_dups
from bench.near_dup_set import TRANSFORMS, base_kinds, near_duplicate_set
from filters.curation.settings import DedupSettings


def test_pairwise_scores_count_pairs_of_the_grouping_against_the_truth() -> None:
    truth = np.array([0, 0, 0, 1, 1])
    predicted = np.array([0, 0, 1, 1, 1])  # one true pair split off, one false pair made
    precision, recall = near_dups.pairwise_scores(predicted, truth)
    assert (precision, recall) == (pytest.approx(2 / 4), pytest.approx(2 / 4))


def test_the_generated_set_is_each_base_then_its_copies() -> None:
    samples = list(near_duplicate_set(3, seed=1))
    assert [(s.group, s.transform) for s in samples[:7]] == [(0, "original"), *((0, name) for name in TRANSFORMS)]
    assert len(samples) == 3 * (1 + len(TRANSFORMS))
    assert all(s.pixels.dtype == np.uint8 and s.pixels.shape[2] == 3 for s in samples)


def test_base_kinds_follow_the_shares() -> None:
    kinds = base_kinds(300)
    assert (kinds.count("photo"), kinds.count("scene"), kinds.count("text")) == (150, 90, 60)


def test_synthetic_copies_are_within_every_distance_of_their_original() -> None:
    settings = DedupSettings()
    columns = near_dups.synthetic_hashes(500, settings, seed=3)
    copies = np.flatnonzero(columns["planted"] >= 0)
    originals = columns["planted"][copies]
    assert copies.size > 50 and (columns["planted"][originals] == -1).all()
    for kind, limit in settings.max_distances().items():
        assert (np.bitwise_count(columns[kind][copies] ^ columns[kind][originals]) <= limit).all()


def test_the_scenario_reports_quality_cost_and_scaling() -> None:
    result = near_dups.main(["--bases", "6", "--sizes", "500", "2000"])
    assert result["generated_set"]["images"] == 42
    assert 0 < result["default"]["recall"] <= 1 and 0 < result["default"]["precision"] <= 1
    assert len(result["sweep"]) == len(near_dups.SWEEP)
    assert result["measures_ms_per_image"]["generated_mean"] > 0
    for scaling in result["grouping_scaling"].values():
        assert scaling["500"]["planted_copies_found"] and scaling["2000"]["planted_copies_found"]
    assert result["all_pairs_500"]["same_count_as_banding"] is True
