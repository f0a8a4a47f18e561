"""Every pair of images whose 64-bit hashes are all within their Hamming distances, without all pairs.

Multi-index hashing (Norouzi, Punjani and Fleet, "Fast search in Hamming space with multi-index
hashing", CVPR 2012): split a hash into ``bands`` bands. Two hashes within distance ``d`` differ in
at most ``d`` bits, so (pigeonhole) at least one band differs in at most ``floor(d / bands)`` bits.
With that ``radius``, each hash is stored under its exact band values and looked up under every
value within ``radius`` bits of them: a pair within ``d`` meets in at least one band, always.
``radius = 0`` is plain LSH banding with ``d + 1`` bands.

When several hashes must all be within their distances (pHash and dHash), a pair has a close band
in *each*, so keys can join one band of each hash (an AND of bands, as in LSH): a pair within both
distances meets on the joint key of its two close bands. Joint keys are wider, so far fewer pairs
meet by chance, and the search stays exact. A hash kind may also take no part in the keys and only
be checked (:class:`KeyPlan` parts of ``None``).

Cost: lookups (``count * keys * (1 + flipped values per key)``) plus the pairs that meet by chance
(about ``count**2 / 2 * sum over keys of (1 + flips) / 2**key_bits`` for random hashes).
:func:`plan_keys` picks the exact plan of least estimated cost for the number of hashes; it stays
near-linear while keys are wider than about ``log2(count)`` bits plus the log of the key count.

The steps, and the Ray Data operation each becomes:

- :func:`key_values`: each hash's value under each joint key (``map_batches`` emitting
  ``(key_id, key, node)`` rows, the node's hashes and size carried so no later join is needed);
- :func:`equal_key_pairs`: pairs of rows with equal keys (``groupby(["key_id", "key"])
  .map_groups(...)``: every two rows of a group);
- :func:`probe_matches`: flipped key values looked up among the stored ones (probe rows from
  ``map_batches``, then ``Dataset.join`` with the stored rows on ``(key_id, key)``);
- the check of every hash's distance on each candidate (``map_batches``, a filter).

:func:`pairs_within` cuts the search into :class:`SearchPart` units (a joint key, a slice of its flip
masks) that depend only on the hashes: they run in this process by default, or as Ray tasks
(``engine/execute/near_dup_search.py``), each checking its candidates a chunk at a time, so memory
stays ``O(count)`` per part plus the pairs found.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations, pairwise, product

import numpy as np

HASH_BITS = 64
# A key is indexed by a dense offsets table (2**bits entries, O(1) lookups) when the table is at most
# DENSE_INDEX_FACTOR times larger than the hashes and at most 2**DENSE_INDEX_MAX_BITS entries (128 MB);
# otherwise by binary search.
DENSE_INDEX_FACTOR = 64
DENSE_INDEX_MAX_BITS = 24
# Relative costs, measured on 2 CPU cores with 20k-200k random hashes: a value looked up in a dense
# table ~100 ns, by binary search ~350 ns; a row stored under a key (key built, sorted) ~150 ns; a dense
# table entry ~10 ns; a candidate pair met and checked ~180 ns.
LOOKUP_COST = {True: 1.0, False: 3.5}
STORE_COST = 1.5
TABLE_ENTRY_COST = 0.1
CANDIDATE_COST = 1.8
FLIP_CHUNK = 1 << 22  # probe values held at once


@dataclass(frozen=True)
class BandPlan:
    """``bands`` bands of one ``bits``-bit hash, each looked up within ``radius`` flipped bits."""

    bands: int
    radius: int
    bits: int = HASH_BITS

    def __post_init__(self) -> None:
        if not 1 <= self.bands <= self.bits:
            raise ValueError(f"bands must be between 1 and {self.bits}, got {self.bands}")
        if not 0 <= self.radius < self.bits // self.bands:
            raise ValueError(f"radius must be between 0 and the narrowest band's width - 1, got {self.radius}")

    @property
    def max_distance(self) -> int:
        """The largest distance at which every pair has a band within the radius."""
        return self.bands * (self.radius + 1) - 1

    def widths(self) -> list[int]:
        """Bits per band, most significant band first (the first ``bits % bands`` bands one bit wider)."""
        width, extra = divmod(self.bits, self.bands)
        return [width + (1 if band < extra else 0) for band in range(self.bands)]

    def shifts(self) -> list[int]:
        """The right shift that brings each band down to the low bits."""
        shifts, used = [], 0
        for width in self.widths():
            used += width
            shifts.append(self.bits - used)
        return shifts


@dataclass(frozen=True)
class JointKey:
    """One key: a band of each keyed hash kind (``None`` for a kind that is only checked)."""

    bands: tuple[int | None, ...]
    widths: tuple[int, ...]

    @property
    def bits(self) -> int:
        return sum(self.widths)


@dataclass(frozen=True)
class KeyPlan:
    """The band plan of each hash kind, in the order of the hashes; ``None``: the kind is not in the keys."""

    parts: tuple[BandPlan | None, ...]

    def __post_init__(self) -> None:
        if all(part is None for part in self.parts):
            raise ValueError("at least one hash kind must be banded")
        if sum(max(part.widths()) for part in self.parts if part) > HASH_BITS:
            raise ValueError(f"joint keys of {self} would be wider than {HASH_BITS} bits")

    def joint_keys(self) -> Iterator[JointKey]:
        """Every joint key: one band of each banded kind."""
        choices = [range(part.bands) if part else [None] for part in self.parts]
        for bands in product(*choices):
            widths = tuple(
                part.widths()[band] for part, band in zip(self.parts, bands, strict=True) if part and band is not None
            )
            yield JointKey(bands, widths)

    def flips(self, key: JointKey) -> int:
        """Flipped values looked up per stored value of ``key``."""
        total = 1
        for part, width in zip([p for p in self.parts if p], key.widths, strict=True):
            total *= 1 + neighbours(width, part.radius)
        return total - 1

    def covers(self, max_distances: Sequence[int]) -> bool:
        """Whether every pair within ``max_distances`` (one per kind) meets on some key."""
        return all(
            part is None or part.max_distance >= distance
            for part, distance in zip(self.parts, max_distances, strict=True)
        )


def neighbours(width: int, radius: int) -> int:
    """How many values lie 1..``radius`` bits away from a ``width``-bit value."""
    return sum(math.comb(width, flips) for flips in range(1, radius + 1))


def dense_index(bits: int, count: int) -> bool:
    """Whether a ``bits``-bit key over ``count`` hashes is indexed by a dense offsets table."""
    return bits <= DENSE_INDEX_MAX_BITS and 1 << bits <= DENSE_INDEX_FACTOR * max(count, 1 << 12)


def estimated_cost(plan: KeyPlan, count: int) -> float:
    """Lookups plus (weighted) chance candidate pairs among ``count`` uniformly random hashes."""
    cost = 0.0
    for key in plan.joint_keys():
        flips, dense = plan.flips(key), dense_index(key.bits, count)
        cost += (
            count * STORE_COST + count * flips * LOOKUP_COST[dense] + (TABLE_ENTRY_COST * 2**key.bits if dense else 0)
        )
        cost += CANDIDATE_COST * count * count / 2 * (1 + flips) / 2.0**key.bits
    return cost


def band_plans(max_distance: int, bits: int = HASH_BITS) -> list[BandPlan]:
    """Every plan of one hash that finds all pairs within ``max_distance``, fewest flips for each band count."""
    plans = []
    for bands in range(1, min(bits, max_distance + 1) + 1):
        radius = -(-(max_distance + 1) // bands) - 1
        if radius < bits // bands:
            plans.append(BandPlan(bands, radius, bits))
    return plans


def plan_keys(max_distances: Sequence[int], count: int) -> KeyPlan:
    """The exact plan (every pair within all ``max_distances`` meets) of least estimated cost for ``count``
    hashes of each kind. Each kind is banded or only checked; joint keys fit in 64 bits."""
    for distance in max_distances:
        if not 0 <= distance < HASH_BITS:
            raise ValueError(f"a max distance must be between 0 and {HASH_BITS - 1}, got {distance}")
    options = [[None, *band_plans(distance)] for distance in max_distances]
    plans = []
    for parts in product(*options):
        if any(parts) and sum(max(part.widths()) for part in parts if part) <= HASH_BITS:
            plans.append(KeyPlan(tuple(parts)))
    return min(plans, key=lambda plan: (estimated_cost(plan, max(count, 2)), len(list(plan.joint_keys()))))


def key_values(hashes: Sequence[np.ndarray], plan: KeyPlan, key: JointKey) -> np.ndarray:
    """Every row's value under ``key``: its chosen bands, concatenated (uint64)."""
    value = np.zeros(len(hashes[0]), dtype=np.uint64)
    for column, part, band in zip(hashes, plan.parts, key.bands, strict=True):
        if part is None or band is None:
            continue
        width, shift = part.widths()[band], part.shifts()[band]
        value = (value << np.uint64(width)) | (
            (column.astype(np.uint64) >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        )
    return value


def flip_masks(plan: KeyPlan, key: JointKey) -> np.ndarray:
    """Every nonzero mask that flips at most each kind's radius of bits within its part of ``key``."""
    masks = np.zeros(1, dtype=np.uint64)
    for part, width in zip([p for p in plan.parts if p], key.widths, strict=True):
        flips = [0] + [
            sum(1 << bit for bit in chosen)
            for count in range(1, part.radius + 1)
            for chosen in combinations(range(width), count)
        ]
        masks = ((masks[:, None] << np.uint64(width)) | np.array(flips, dtype=np.uint64)[None, :]).ravel()
    return masks[1:]  # masks[0] flips nothing


def _ramp(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., c - 1 for each count c, concatenated."""
    starts = np.cumsum(counts) - counts
    return np.arange(int(counts.sum())) - np.repeat(starts, counts)


class KeyIndex:
    """Row positions sorted by their value under one key, for lookups by value."""

    def __init__(self, values: np.ndarray, bits: int) -> None:
        self.order = np.argsort(values, kind="stable")
        self.sorted = values[self.order]
        self.dense = dense_index(bits, values.size)
        if self.dense:
            # offsets[v] .. offsets[v + 1] are the sorted positions holding value v.
            self.offsets = np.r_[0, np.cumsum(np.bincount(values.astype(np.int64), minlength=1 << bits))]

    def ranges(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first sorted position, count) of the stored values equal to each of ``keys``."""
        if self.dense:
            keys = keys.astype(np.int64)
            low = self.offsets[keys]
            return low, self.offsets[keys + 1] - low
        low = np.searchsorted(self.sorted, keys, "left")
        return low, np.searchsorted(self.sorted, keys, "right") - low


def equal_key_pairs(index: KeyIndex) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of rows with equal values under the index's key, each pair once."""
    values = index.sorted
    if values.size < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    sizes = np.diff(np.r_[starts, values.size])
    group = np.repeat(np.arange(starts.size), sizes)
    later = sizes[group] - 1 - (np.arange(values.size) - starts[group])  # partners after each row in its run
    left = np.repeat(np.arange(values.size), later)
    right = left + 1 + _ramp(later)
    return index.order[left], index.order[right]


def probe_matches(index: KeyIndex, probes: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (owner of a probe value, row storing that value): the join of probes with stored values."""
    low, counts = index.ranges(probes)
    return np.repeat(owners, counts), index.order[np.repeat(low, counts) + _ramp(counts)]


def _unique_pairs(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct pairs, each as (low, high), sorted."""
    low, high = np.minimum(left, right), np.maximum(left, right)
    packed = np.sort((low.astype(np.uint64) << np.uint64(32)) | high.astype(np.uint64))
    packed = packed[np.r_[True, packed[1:] != packed[:-1]]] if packed.size else packed
    return (packed >> np.uint64(32)).astype(np.int64), (packed & np.uint64(0xFFFFFFFF)).astype(np.int64)


@dataclass(frozen=True)
class Matches:
    """Pairs of row positions (``left`` < ``right``) within every distance, and how many candidates
    were checked to find them."""

    left: np.ndarray
    right: np.ndarray
    candidates: int
    plan: KeyPlan | None


@dataclass(frozen=True)
class SearchPart:
    """One independent unit of the search: under one joint key, the pairs of equal values (``equal``) and
    the lookups of flip masks ``masks_from`` .. ``masks_to``. Parts run anywhere (a Ray task each): what
    one finds depends only on the hashes, the plan and the part."""

    key: JointKey
    equal: bool
    masks_from: int
    masks_to: int


PartPairs = tuple[np.ndarray, np.ndarray, int]
# (hashes, max distances, plan, parts) -> each part's (left, right, candidates checked), in any order.
PartRunner = Callable[[Sequence[np.ndarray], Sequence[int], KeyPlan, list[SearchPart]], Iterable[PartPairs]]


def search_parts(plan: KeyPlan, splits_per_key: int = 1) -> list[SearchPart]:
    """The search of ``plan`` cut into parts: each joint key's flip masks in ``splits_per_key`` slices (its
    equal-value pairs go with the first)."""
    parts = []
    for key in plan.joint_keys():
        masks = flip_masks(plan, key).size
        bounds = np.linspace(0, masks, max(1, min(splits_per_key, masks)) + 1).astype(int)
        parts += [
            SearchPart(key, index == 0, int(low), int(high)) for index, (low, high) in enumerate(pairwise(bounds))
        ]
    return parts


def pairs_of_part(
    hashes: Sequence[np.ndarray], max_distances: Sequence[int], plan: KeyPlan, part: SearchPart
) -> PartPairs:
    """The pairs within every distance that ``part`` meets (``left`` < ``right``, a pair may repeat), and how
    many candidates it checked; each chunk of candidates is checked as it is met."""
    hashes = [np.asarray(column, dtype=np.uint64) for column in hashes]  # no copy of uint64 columns
    count = len(hashes[0])
    lefts, rights, candidates = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], 0

    def check(left: np.ndarray, right: np.ndarray) -> None:
        nonlocal candidates
        candidates += left.size
        close = np.ones(left.size, dtype=bool)
        for column, distance in zip(hashes, max_distances, strict=True):
            close &= np.bitwise_count(column[left] ^ column[right]) <= distance
        lefts.append(left[close])
        rights.append(right[close])

    values = key_values(hashes, plan, part.key)
    index = KeyIndex(values, part.key.bits)
    if part.equal:
        check(*equal_key_pairs(index))
    masks = flip_masks(plan, part.key)[part.masks_from : part.masks_to]
    positions = np.arange(count, dtype=np.int64)
    per_chunk = max(1, FLIP_CHUNK // count)
    for start in range(0, masks.size, per_chunk):
        chunk = masks[start : start + per_chunk]
        probes = (values[:, None] ^ chunk[None, :]).ravel()
        left, right = probe_matches(index, probes, np.repeat(positions, chunk.size))
        one_side = left < right  # a pair a flip apart is met from both sides: check one
        check(left[one_side], right[one_side])
    return np.concatenate(lefts), np.concatenate(rights), candidates


def in_process(
    hashes: Sequence[np.ndarray], max_distances: Sequence[int], plan: KeyPlan, parts: list[SearchPart]
) -> Iterator[PartPairs]:
    """The default :data:`PartRunner`: each part in turn, in this process."""
    for part in parts:
        yield pairs_of_part(hashes, max_distances, plan, part)


@dataclass(frozen=True)
class PairSearch:
    """Where the parts of a search run (``run_parts``) and how finely each joint key is cut."""

    run_parts: PartRunner = in_process
    splits_per_key: int = 1


IN_PROCESS = PairSearch()


def pairs_within(
    hashes: Sequence[np.ndarray],
    max_distances: Sequence[int],
    plan: KeyPlan | None = None,
    search: PairSearch = IN_PROCESS,
) -> Matches:
    """Every pair of rows whose hashes (one uint64 array per kind) are all within their ``max_distances``,
    each pair once, met through the keys of ``plan`` (by default :func:`plan_keys` for this many rows).
    ``search`` runs the :func:`search_parts` where it likes."""
    count = len(hashes[0])
    if count >= 1 << 32:
        raise ValueError("pairs_within packs row positions in 32 bits; split larger inputs")
    if count < 2:
        return Matches(np.zeros(0, np.int64), np.zeros(0, np.int64), 0, None)
    plan = plan or plan_keys(max_distances, count)
    if not plan.covers(max_distances):
        raise ValueError(f"{plan} does not find every pair within {list(max_distances)}")
    hashes = [np.ascontiguousarray(column, dtype=np.uint64) for column in hashes]
    parts = search_parts(plan, search.splits_per_key)
    found = list(search.run_parts(hashes, list(max_distances), plan, parts))
    # A pair that meets on several keys (or parts) is found once per each: keep one.
    left, right = _unique_pairs(np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found]))
    return Matches(left, right, sum(f[2] for f in found), plan)
