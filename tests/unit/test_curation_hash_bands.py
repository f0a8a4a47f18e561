"""Multi-index hashing finds every pair within the distances: checked against all pairs compared."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from filters.curation.hash_bands import (
    BandPlan,
    KeyPlan,
    PairSearch,
    band_plans,
    flip_masks,
    in_process,
    pairs_within,
    plan_keys,
    search_parts,
)


def _hashes_with_near_pairs(count: int, seed: int, max_flips: int) -> np.ndarray:
    """Random 64-bit hashes; every third one is copied into the next with up to ``max_flips`` bits flipped."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64 - 1, count, dtype=np.uint64, endpoint=True)
    for i in range(0, count - 1, 3):
        value = int(hashes[i])
        for bit in rng.choice(64, int(rng.integers(0, max_flips + 1)), replace=False):
            value ^= 1 << int(bit)
        hashes[i + 1] = value
    return hashes


def _brute_force(hashes: list[np.ndarray], distances: list[int]) -> set[tuple[int, int]]:
    count = hashes[0].size
    close = np.ones((count, count), dtype=bool)
    for column, distance in zip(hashes, distances, strict=True):
        close &= np.bitwise_count(column[:, None] ^ column[None, :]) <= distance
    left, right = np.nonzero(np.triu(close, 1))
    return set(zip(left.tolist(), right.tolist(), strict=True))


def _found(hashes: list[np.ndarray], distances: list[int], plan: KeyPlan | None = None) -> set[tuple[int, int]]:
    matches = pairs_within(hashes, distances, plan)
    return set(zip(matches.left.tolist(), matches.right.tolist(), strict=True))


@pytest.mark.parametrize("distance", [0, 1, 3, 4, 6, 8, 10, 13])
def test_one_hash_every_pair_within_the_distance_is_found(distance: int) -> None:
    hashes = _hashes_with_near_pairs(3000, seed=distance, max_flips=16)
    expected = _brute_force([hashes], [distance])
    assert len(expected) > 0 or distance == 0
    assert _found([hashes], [distance]) == expected


@pytest.mark.parametrize("distances", [(0, 0), (2, 5), (4, 6), (8, 10), (10, 4)])
def test_two_hashes_every_pair_within_both_distances_is_found(distances: tuple[int, int]) -> None:
    first, second = _hashes_with_near_pairs(2500, 1, 14), _hashes_with_near_pairs(2500, 2, 14)
    assert _found([first, second], list(distances)) == _brute_force([first, second], list(distances))


@pytest.mark.parametrize(
    "plan",
    [
        KeyPlan((BandPlan(5, 0), BandPlan(7, 0))),  # joint keys, exact bands
        KeyPlan((BandPlan(3, 1), BandPlan(4, 1))),  # joint keys, flipped bits in both parts
        KeyPlan((BandPlan(2, 2), None)),  # the second hash only checked
    ],
)
def test_every_exact_plan_finds_the_same_pairs(plan: KeyPlan) -> None:
    first, second = _hashes_with_near_pairs(2500, 3, 12), _hashes_with_near_pairs(2500, 4, 12)
    distances = [plan.parts[0].max_distance, plan.parts[1].max_distance if plan.parts[1] else 6]
    assert _found([first, second], distances, plan) == _brute_force([first, second], distances)


def test_pairs_are_reported_once_with_the_lower_position_first() -> None:
    hashes = np.array([5, 5, 5, 7], dtype=np.uint64)
    matches = pairs_within([hashes], [1])
    assert list(zip(matches.left.tolist(), matches.right.tolist(), strict=True)) == [
        (0, 1),
        (0, 2),
        (0, 3),
        (1, 2),
        (1, 3),
        (2, 3),
    ]


def test_every_band_plan_covers_its_distance_by_pigeonhole() -> None:
    for distance in range(20):
        for plan in band_plans(distance):
            assert plan.max_distance >= distance
            assert sum(plan.widths()) == 64


def test_the_chosen_plan_covers_the_distances() -> None:
    for distances in ([3], [8, 10], [0, 12], [31]):
        for count in (100, 200_000, 10**8):
            assert plan_keys(distances, count).covers(distances)


def test_a_plan_that_does_not_cover_the_distance_is_refused() -> None:
    hashes = np.zeros(4, dtype=np.uint64)
    with pytest.raises(ValueError, match="does not find every pair"):
        pairs_within([hashes], [4], KeyPlan((BandPlan(4, 0),)))


def test_joint_keys_wider_than_64_bits_are_refused() -> None:
    with pytest.raises(ValueError, match="wider than 64 bits"):
        KeyPlan((BandPlan(1, 0), BandPlan(2, 0)))


def test_a_radius_as_wide_as_a_band_is_refused() -> None:
    with pytest.raises(ValueError, match="radius"):
        BandPlan(8, 8)


@pytest.mark.parametrize("splits", [2, 5, 1000])
def test_a_search_cut_into_parts_finds_the_same_pairs(splits: int) -> None:
    hashes = [_hashes_with_near_pairs(3000, 31, 9), _hashes_with_near_pairs(3000, 32, 9)]
    plan = KeyPlan((BandPlan(3, 2), None))
    whole = pairs_within(hashes, [8, 10], plan)
    parts_run: list[int] = []

    def counting(hashes, distances, plan, parts):  # type: ignore[no-untyped-def]
        parts_run.append(len(parts))
        return in_process(hashes, distances, plan, parts)

    cut = pairs_within(hashes, [8, 10], plan, PairSearch(counting, splits))
    assert (cut.left.tolist(), cut.right.tolist()) == (whole.left.tolist(), whole.right.tolist())
    assert whole.left.size > 0 and cut.candidates == whole.candidates
    # 3 keys, each cut in ``splits`` slices of its flip masks (no more slices than masks).
    masks = [flip_masks(plan, key).size for key in plan.joint_keys()]
    assert parts_run == [sum(min(splits, m) for m in masks)]


def test_search_parts_cover_every_mask_once_and_equal_pairs_once() -> None:
    plan = KeyPlan((BandPlan(3, 2), None))
    parts = search_parts(plan, 4)
    for key in plan.joint_keys():
        mine = [p for p in parts if p.key == key]
        assert [p.equal for p in mine] == [True, False, False, False]
        assert mine[0].masks_from == 0 and mine[-1].masks_to == flip_masks(plan, key).size
        assert all(a.masks_to == b.masks_from for a, b in pairwise(mine))
