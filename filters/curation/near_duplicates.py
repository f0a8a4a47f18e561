"""Near-duplicate groups: images whose perceptual hashes are all within their distances, transitively.

The grouping is five steps over column batches (``dict[str, np.ndarray]``, Ray Data's ``numpy``
batch format), none of which compares all pairs:

1. **collapse identical** (:func:`collapse_identical`): images with equal hashes and size are one
   node (re-saved copies; thousands of copies of one meme would otherwise make one huge bucket).
   Ray Data: ``groupby(["phash", "dhash", "width", "height"])``, each group's rows -> one node.
2. **band keys** of the nodes' hashes (:mod:`curation.hash_bands`: multi-index hashing, joint keys
   over pHash and dHash bands when both are required). Ray Data: ``map_batches`` emitting key rows
   that carry each node's hashes and size.
3. **candidate pairs**: nodes that meet on a key, directly or within the flipped bits a key allows.
   Ray Data: ``groupby(["key_id", "key"]).map_groups(...)`` for equal keys and ``Dataset.join`` of
   probe rows with stored rows for flipped ones.
4. **verify** (:func:`verify_pairs`): every required hash within its distance, the shape within
   ``max_aspect_change``. Ray Data: ``map_batches`` over the pairs (a filter; they carry both sides).
5. **components** (:func:`connected_components`) of the verified pairs, and one **representative**
   per group (:func:`pick_representatives`: most pixels, then earliest ``source_uri``, then
   ``image_id``). The verified pairs are few (copies, not images), so scipy's connected components
   on one worker suffices up to hundreds of millions of pairs; beyond that, label propagation as
   Ray Data joins (each node takes the smallest label among its neighbours until nothing changes,
   one join + ``groupby(...).min`` per round, about log2 of the largest group's diameter rounds).
   Representatives: ``groupby("component").map_groups(pick_representatives)``.

:func:`group_near_duplicates` runs the steps in memory, for tests and runs that fit one process.
Grouping is single linkage: A ~ B and B ~ C put A and C in one group even when A and C are further
apart; each member records its own distances to the representative.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components

from filters.curation.hash_bands import IN_PROCESS, KeyPlan, Matches, PairSearch, pairs_within
from filters.curation.settings import DedupSettings

Batch = dict[str, np.ndarray]
SIZE_COLUMNS = ("width", "height")


@dataclass(frozen=True)
class NearDuplicateGroups:
    """The grouping of ``count`` images: ``component`` labels (0..groups-1, an image alone is its own
    group), each image's ``representative`` (a position; itself for a representative), the verified
    pairs between nodes (positions of one image of each node) with their distances, and the cost."""

    component: np.ndarray
    representative: np.ndarray
    pairs: Batch
    plan: KeyPlan | None
    candidates: int

    @property
    def duplicates(self) -> np.ndarray:
        """Positions of the images that are not their group's representative."""
        return np.flatnonzero(self.representative != np.arange(self.representative.size))


def hamming(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance of two arrays of 64-bit hashes."""
    return np.bitwise_count(left.astype(np.uint64) ^ right.astype(np.uint64)).astype(np.int16)


def collapse_identical(columns: Batch, keys: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(node of each row, first row of each node): rows equal in every ``keys`` column are one node, numbered
    in the order of their keys. A sort order and one sorted column at a time, not the rows stacked and copied."""
    count = len(columns[keys[0]])
    order = np.lexsort([np.asarray(columns[key]) for key in reversed(keys)])  # stable: a node's first row leads
    starts = np.zeros(count, bool)
    starts[:1] = True
    for key in keys:
        ordered = np.asarray(columns[key])[order]
        starts[1:] |= ordered[1:] != ordered[:-1]
    node = np.empty(count, np.int64)
    node[order] = np.cumsum(starts) - 1
    return node, order[starts]


def verify_pairs(pairs: Batch, max_distances: Mapping[str, int], max_aspect_change: float | None) -> Batch:
    """The candidate pairs that are near-duplicates, with a ``<kind>_distance`` column per hash.

    ``pairs`` holds ``left_<column>`` and ``right_<column>`` for each hash kind (and ``width`` and
    ``height`` when ``max_aspect_change`` is set)."""
    keep = np.ones(len(next(iter(pairs.values()))), dtype=bool)
    distances = {}
    for kind, limit in max_distances.items():
        distances[f"{kind}_distance"] = hamming(pairs[f"left_{kind}"], pairs[f"right_{kind}"])
        keep &= distances[f"{kind}_distance"] <= limit
    if max_aspect_change is not None:
        left = pairs["left_width"] / np.maximum(pairs["left_height"], 1)
        right = pairs["right_width"] / np.maximum(pairs["right_height"], 1)
        keep &= np.abs(np.log(left / right)) <= np.log1p(max_aspect_change)
    return {name: column[keep] for name, column in {**pairs, **distances}.items()}


def connected_components(count: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Component label (0..k-1, in order of first position) of each of ``count`` nodes joined by the pairs."""
    graph = coo_matrix((np.ones(left.size, dtype=np.int8), (left, right)), shape=(count, count))
    _, labels = scipy_components(graph, directed=False)
    return numbered_by_first(labels)


def numbered_by_first(labels: np.ndarray) -> np.ndarray:
    """The same partition, labels renumbered 0..k-1 in order of each label's first position."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    renumber = np.empty(first.size, dtype=np.int64)
    renumber[np.argsort(first)] = np.arange(first.size)
    return renumber[inverse.ravel()]


def pick_representatives(
    component: np.ndarray,
    pixels: np.ndarray,
    source_uris: np.ndarray,
    image_ids: np.ndarray,
    preferred: np.ndarray | None = None,
) -> np.ndarray:
    """Each row's representative (a position): in its component, a ``preferred`` row first (an image an
    earlier version annotated, so a refresh never pays for a group twice), then the most pixels, then the
    earliest ``source_uri``, then the smallest ``image_id``."""
    not_preferred = np.zeros(component.size, bool) if preferred is None else ~np.asarray(preferred, dtype=bool)
    order = np.lexsort((image_ids, source_uris, -pixels.astype(np.int64), not_preferred, component))
    first = np.r_[True, component[order][1:] != component[order][:-1]] if order.size else order.astype(bool)
    best_of_component = np.empty(int(component.max()) + 1 if component.size else 0, dtype=np.int64)
    best_of_component[component[order][first]] = order[first]
    return best_of_component[component]


def near_duplicate_components(
    columns: Batch, settings: DedupSettings, search: PairSearch = IN_PROCESS
) -> tuple[np.ndarray, Batch, Matches]:
    """Steps 1-4 and the components of step 5: each row's component label (0..k-1 in order of first row), the
    verified pairs (positions of one row of each node) and the search's matches. ``columns``: ``width``,
    ``height`` and one uint64 column per hash kind in ``settings.hashes``, one row per image."""
    limits = settings.max_distances()
    node, first = collapse_identical(columns, (*settings.hashes, *SIZE_COLUMNS))
    nodes = {name: np.asarray(columns[name])[first] for name in (*settings.hashes, *SIZE_COLUMNS)}
    matches = pairs_within([nodes[kind] for kind in settings.hashes], list(limits.values()), search=search)
    pairs = {
        f"{side}_{name}": nodes[name][ends]
        for side, ends in (("left", matches.left), ("right", matches.right))
        for name in nodes
    }
    pairs |= {"left": matches.left, "right": matches.right}
    verified = verify_pairs(pairs, limits, settings.max_aspect_change)
    component = numbered_by_first(connected_components(first.size, verified["left"], verified["right"])[node])
    verified["left"], verified["right"] = first[verified["left"]], first[verified["right"]]
    return component, verified, matches


def group_near_duplicates(
    columns: Batch, settings: DedupSettings, search: PairSearch = IN_PROCESS
) -> NearDuplicateGroups:
    """Group images in memory. ``columns``: ``width``, ``height``, ``source_uri``, ``image_id`` and one
    uint64 column per hash kind in ``settings.hashes``, one row per image; optionally ``preferred``
    (bool: rows to pick as representatives first). ``search``: where the pair search runs."""
    component, verified, matches = near_duplicate_components(columns, settings, search)
    pixels = np.asarray(columns["width"]).astype(np.int64) * np.asarray(columns["height"]).astype(np.int64)
    representative = pick_representatives(
        component,
        pixels,
        np.asarray(columns["source_uri"]),
        np.asarray(columns["image_id"]),
        columns.get("preferred"),
    )
    return NearDuplicateGroups(component, representative, verified, matches.plan, matches.candidates)
