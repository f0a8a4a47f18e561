"""Semantic near-duplicates: SimHash of embeddings on the same candidate -> verify -> components path."""

from __future__ import annotations

import numpy as np
import pytest

from filters.curation.near_duplicates import connected_components
from filters.curation.semantic import hamming_budget, semantic_copies, semantic_pairs, simhash


def _embeddings(count: int, dimensions: int, seed: int) -> np.ndarray:
    """Clustered embeddings (unrelated pairs at cosine ~0.6, as CLIP's are); every third row copied into
    the next with noise of a random size, so copies span cosines from ~0.8 to ~1."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, dimensions)) + 1.2 * rng.standard_normal(dimensions)
    for i in range(0, count - 1, 3):
        scale = rng.uniform(0.05, 0.6) * np.linalg.norm(vectors[i]) / np.sqrt(dimensions)
        vectors[i + 1] = vectors[i] + rng.standard_normal(dimensions) * scale
    return vectors


def test_simhash_depends_on_direction_only_and_on_the_seed() -> None:
    vectors = _embeddings(20, 64, seed=0)
    assert (simhash(vectors * 3.5, seed=1) == simhash(vectors, seed=1)).all()
    assert (simhash(vectors, seed=1) != simhash(vectors, seed=2)).any()


def test_the_hamming_budget_widens_as_the_minimum_cosine_falls() -> None:
    assert hamming_budget(0.98) < hamming_budget(0.95) < hamming_budget(0.9)
    assert (hamming_budget(0.9), hamming_budget(0.999)) == (19, 5)  # 99.9 % quantiles of Binomial(64, angle / pi)


def test_a_minimum_cosine_outside_the_open_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="min_cosine"):
        hamming_budget(1.0)


@pytest.mark.parametrize("min_cosine", [0.95, 0.98])
def test_pairs_above_the_minimum_cosine_are_found_and_only_they(min_cosine: float) -> None:
    vectors = _embeddings(2000, 128, seed=5)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = unit @ unit.T
    left, right = np.nonzero(np.triu(cosine >= min_cosine, 1))
    expected = set(zip(left.tolist(), right.tolist(), strict=True))
    found = semantic_pairs(vectors, min_cosine)
    pairs = set(zip(found.left.tolist(), found.right.tolist(), strict=True))
    assert pairs <= expected
    assert len(pairs) >= 0.99 * len(expected) and len(expected) > 100
    assert np.allclose(found.cosine, cosine[found.left, found.right])


def test_semantic_pairs_group_through_the_shared_components() -> None:
    vectors = np.array([[1.0, 0.0, 0.0], [0.999, 0.04, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    found = semantic_pairs(vectors, 0.99)
    assert connected_components(4, found.left, found.right).tolist() == [0, 0, 1, 2]


def test_semantic_copies_name_each_copy_its_representative_and_cosine() -> None:
    base = np.eye(8)[:3] * 5.0
    embeddings = np.vstack([base[0], base[0] + 0.01 * np.eye(8)[5], base[1], base[2], base[2] * 2.0])
    pixels = np.array([100, 400, 50, 50, 10])
    uris = np.array(["/a", "/b", "/c", "/d", "/e"])
    ids = np.array(["A", "B", "C", "D", "E"])
    copies = semantic_copies(embeddings, pixels, uris, ids, min_cosine=0.99)
    assert [(c.copy, c.representative) for c in copies] == [(0, 1), (4, 3)]
    assert copies[0].cosine == pytest.approx(1.0, abs=1e-4) and copies[1].cosine == pytest.approx(1.0)
    preferred = np.array([True, False, False, False, False])
    assert [(c.copy, c.representative) for c in semantic_copies(embeddings, pixels, uris, ids, 0.99, preferred)] == [
        (1, 0),
        (4, 3),
    ]
    assert semantic_copies(embeddings[:1], pixels[:1], uris[:1], ids[:1], 0.99) == []


def test_cosines_gathered_a_slice_of_pairs_at_a_time_equal_all_at_once(monkeypatch) -> None:
    from filters.curation import semantic

    rng = np.random.default_rng(4)
    embeddings = rng.standard_normal((20, 8))
    left, right = rng.integers(0, 20, 11), rng.integers(0, 20, 11)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    monkeypatch.setattr(semantic, "PAIRS_AT_ONCE", 3)
    np.testing.assert_allclose(semantic.cosines(embeddings, left, right), np.sum(unit[left] * unit[right], axis=1))
    assert semantic.cosines(embeddings, left[:0], right[:0]).shape == (0,)
