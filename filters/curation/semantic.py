"""Semantic near-duplicates: image embeddings (CLIP, SigLIP) within a cosine similarity, on the same
candidate -> verify -> components machinery as the perceptual hashes.

An embedding becomes a 64-bit SimHash (Charikar 2002): the signs of its projections on 64 random
hyperplanes. Two embeddings at angle ``theta`` differ in each bit with probability ``theta / pi``,
so pairs above ``min_cosine`` are, with probability ``recall``, within :func:`hamming_budget` bits:
:func:`curation.hash_bands.pairs_within` finds those candidates without comparing all pairs, and
each candidate is verified by its exact cosine. Unlike the perceptual hashes (where the Hamming
distance *is* the criterion), this step is probabilistic: a pair just above ``min_cosine`` is missed
with probability at most ``1 - recall``. Groups and representatives then come from
:func:`curation.near_duplicates.connected_components` and :func:`~curation.near_duplicates.pick_representatives`.

:func:`semantic_copies` is the whole step over one table of embeddings (a pure function). The engine runs its
steps where the images are (``engine/ingest/semantic_parts.py``): it embeds the images the hash grouping kept in
their partitions (``engine/ingest/embeddings.py``), searches the SimHashes of all of them (:func:`candidate_pairs`),
and reads back only the candidates' embeddings to verify them and pick representatives (:func:`copies_of_pairs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from filters.curation.hash_bands import HASH_BITS, IN_PROCESS, Matches, PairSearch, pairs_within
from filters.curation.near_duplicates import connected_components, pick_representatives

PAIRS_AT_ONCE = 1 << 16


@dataclass(frozen=True)
class SemanticPairs:
    """Pairs of rows (``left`` < ``right``) with cosine similarity at least the minimum, and the cost."""

    left: np.ndarray
    right: np.ndarray
    cosine: np.ndarray
    hamming_budget: int
    candidates: int


def hyperplanes(dimensions: int, seed: int, bits: int = HASH_BITS) -> np.ndarray:
    """The (dimensions, bits) random Gaussian hyperplanes of a SimHash; the same seed, the same hash."""
    return np.random.default_rng(seed).standard_normal((dimensions, bits))


def simhash(embeddings: np.ndarray, seed: int = 0) -> np.ndarray:
    """One 64-bit SimHash (uint64) per row of ``embeddings`` (N, D): bit i set when the projection on
    hyperplane i is positive, first hyperplane most significant."""
    signs = embeddings.astype(np.float64) @ hyperplanes(embeddings.shape[1], seed) > 0
    return np.packbits(signs, axis=1).view(">u8").ravel().astype(np.uint64)


def hamming_budget(min_cosine: float, recall: float = 0.999, bits: int = HASH_BITS) -> int:
    """The Hamming distance within which a pair of cosine ``min_cosine`` falls with probability ``recall``."""
    if not -1.0 < min_cosine < 1.0:
        raise ValueError(f"min_cosine must be in (-1, 1), got {min_cosine}")
    flip = np.arccos(min_cosine) / np.pi
    return int(binom.ppf(recall, bits, flip))


def candidate_pairs(
    hashes: np.ndarray, min_cosine: float, recall: float = 0.999, search: PairSearch = IN_PROCESS
) -> Matches:
    """The pairs of rows whose SimHashes (``hashes``, uint64) are within the :func:`hamming_budget` of
    ``min_cosine``: every pair of that cosine or more with probability ``recall``, and others to verify."""
    return pairs_within([hashes], [hamming_budget(min_cosine, recall)], search=search)


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """``embeddings`` (N, D) scaled to unit length (a zero row stays zero)."""
    return embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)


def cosines(embeddings: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The cosine similarity of rows ``left[i]`` and ``right[i]`` of ``embeddings``, for each ``i`` (gathered
    :data:`PAIRS_AT_ONCE` pairs at a time, so many candidates need no copy of both sides at once)."""
    unit = unit_rows(embeddings)
    found = np.empty(left.size, unit.dtype)
    for start in range(0, left.size, PAIRS_AT_ONCE):
        at = slice(start, start + PAIRS_AT_ONCE)
        found[at] = np.einsum("ij,ij->i", unit[left[at]], unit[right[at]])
    return found


def semantic_pairs(embeddings: np.ndarray, min_cosine: float, recall: float = 0.999, seed: int = 0) -> SemanticPairs:
    """Pairs of rows whose embeddings have cosine similarity at least ``min_cosine`` (each found with
    probability at least ``recall``), without comparing all pairs."""
    matches = candidate_pairs(simhash(embeddings, seed), min_cosine, recall)
    cosine = cosines(embeddings, matches.left, matches.right)
    close = cosine >= min_cosine
    budget = hamming_budget(min_cosine, recall)
    return SemanticPairs(matches.left[close], matches.right[close], cosine[close], budget, matches.candidates)


@dataclass(frozen=True)
class SemanticCopy:
    """Row ``copy`` is a semantic near-duplicate of row ``representative`` (cosine of their embeddings)."""

    copy: int
    representative: int
    cosine: float


def semantic_copies(
    embeddings: np.ndarray,
    pixels: np.ndarray,
    source_uris: np.ndarray,
    image_ids: np.ndarray,
    min_cosine: float,
    preferred: np.ndarray | None = None,
    recall: float = 0.999,
    seed: int = 0,
) -> list[SemanticCopy]:
    """Every row that is not its semantic group's representative (the groups: connected components of the
    pairs at cosine >= ``min_cosine``; the representative as for hashes: ``preferred``, most pixels, earliest
    URI, smallest id), with its cosine to the representative."""
    if embeddings.shape[0] < 2:
        return []
    pairs = semantic_pairs(embeddings, min_cosine, recall, seed)
    return copies_of_pairs(embeddings, pairs.left, pairs.right, pixels, source_uris, image_ids, preferred)


def copies_of_pairs(
    embeddings: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    pixels: np.ndarray,
    source_uris: np.ndarray,
    image_ids: np.ndarray,
    preferred: np.ndarray | None = None,
) -> list[SemanticCopy]:
    """The copies of :func:`semantic_copies` from its verified pairs (rows ``left[i]`` and ``right[i]``, at
    cosine >= the minimum): a row in no pair is its own group."""
    count = embeddings.shape[0]
    component = connected_components(count, left, right)
    representative = pick_representatives(component, pixels, source_uris, image_ids, preferred)
    copies = np.flatnonzero(representative != np.arange(count))
    cosine = cosines(embeddings, copies, representative[copies])
    return [
        SemanticCopy(int(c), int(r), float(v)) for c, r, v in zip(copies, representative[copies], cosine, strict=True)
    ]
