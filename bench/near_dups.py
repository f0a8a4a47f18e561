"""Near-duplicate grouping: how well it groups known copies, what measuring costs, how grouping scales.

1. **Quality** on a generated set (``bench/near_dup_set.py``; 300 bases x 7 = 2,100 images by default):
   pairwise precision and recall of the groups against the known ones, F0.5 (precision weighed
   double: a false merge loses an image's annotations, a missed copy only costs its annotation),
   images skipped as a copy of a different image, images left to annotate, recall per transform
   (copy grouped with its original) and false merges per kind of base, for a sweep of thresholds
   and for the default settings.
2. **Cost of the measures** in ms per image (``curation.measures.measure_image`` on decoded pixels):
   on the generated set and on ``samples/images``.
3. **Scaling**: ``group_near_duplicates`` over 20k and 200k synthetic images (random 64-bit pHash
   and dHash; a fifth of them copies of another with bits flipped within the distances), with the
   default distances and with tighter ones (4/6): CPU seconds, the ratio (linear is 10x), and every
   planted copy checked found. All pairs compared by brute force at the small size, for reference.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.near_dup_set import TRANSFORMS, near_duplicate_set
from filters.curation.hash_bands import pairs_within
from filters.curation.measures import measure_image
from filters.curation.near_duplicates import group_near_duplicates, hamming
from filters.curation.settings import DedupSettings

# Tighter distances, for how the grouping's cost depends on them.
TIGHT = DedupSettings(phash_max_distance=4, dhash_max_distance=6)
SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "images"
# (pHash, dHash) maxima swept; None: that hash is not required.
SWEEP = (
    (2, None),
    (4, None),
    (6, None),
    (8, None),
    (10, None),
    (None, 6),
    (None, 10),
    (2, 4),
    (4, 6),
    (6, 8),
    (8, 8),
    (8, 10),
    (10, 10),
    (12, 10),
    (12, 12),
)


def _pairs(counts: np.ndarray) -> int:
    return int((counts * (counts - 1) // 2).sum())


def pairwise_scores(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Pairwise precision and recall of a grouping (labels per image) against the true groups."""
    _, joint = np.unique(np.stack([predicted, truth]), axis=1, return_counts=True)
    same_both = _pairs(joint)
    predicted_pairs = _pairs(np.unique(predicted, return_counts=True)[1])
    true_pairs = _pairs(np.unique(truth, return_counts=True)[1])
    return same_both / max(1, predicted_pairs), same_both / max(1, true_pairs)


def evaluate(columns: dict[str, np.ndarray], truth: dict[str, np.ndarray], settings: DedupSettings) -> dict[str, Any]:
    """Scores of ``settings`` on the measured generated set."""
    groups = group_near_duplicates(columns, settings)
    precision, recall = pairwise_scores(groups.component, truth["group"])
    duplicate = groups.representative != np.arange(groups.representative.size)
    originals = np.flatnonzero(truth["transform"] == "original")
    original_of = originals[np.searchsorted(truth["group"][originals], truth["group"])]
    together = groups.component == groups.component[original_of]
    merged = {}
    for kind in np.unique(truth["kind"]):
        mine = truth["kind"] == kind
        # Images of this kind grouped with an image of another group.
        merged[str(kind)] = int(
            sum(
                np.unique(truth["group"][groups.component == component]).size > 1
                for component in np.unique(groups.component[mine])
            )
        )
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f0_5": round(1.25 * precision * recall / max(1e-12, 0.25 * precision + recall), 4),
        "wrongly_skipped": int((duplicate & (truth["group"][groups.representative] != truth["group"])).sum()),
        "annotated": int((~duplicate).sum()),
        "recall_by_transform": {
            name: round(float(together[truth["transform"] == name].mean()), 3) for name in TRANSFORMS
        },
        "merged_groups_by_kind": merged,
    }


def measure_generated(bases: int, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]:
    """Measures of every generated image (pixels dropped after measuring), the truth, and ms per image."""
    rows, truth_rows, seconds = [], [], 0.0
    for sample in near_duplicate_set(bases, seed):
        started = time.process_time()
        measures = measure_image(sample.pixels)
        seconds += time.process_time() - started
        rows.append(measures)
        truth_rows.append((sample.group, sample.kind, sample.transform))
    count = len(rows)
    columns = {
        "phash": np.array([m.phash for m in rows], dtype=np.uint64),
        "dhash": np.array([m.dhash for m in rows], dtype=np.uint64),
        "width": np.array([m.width for m in rows], dtype=np.int64),
        "height": np.array([m.height for m in rows], dtype=np.int64),
        "source_uri": np.array([f"generated/{i:05d}.png" for i in range(count)]),
        "image_id": np.array([f"{i:064x}" for i in range(count)]),
    }
    truth = {
        "group": np.array([t[0] for t in truth_rows]),
        "kind": np.array([t[1] for t in truth_rows]),
        "transform": np.array([t[2] for t in truth_rows]),
    }
    return columns, truth, 1000 * seconds / count


def measure_samples(repeats: int = 5) -> dict[str, Any]:
    """ms per image of the measures on the decoded sample images (best of ``repeats`` per image)."""
    costs = {}
    for path in sorted(SAMPLES.glob("*")):
        pixels = np.asarray(Image.open(path).convert("RGB"))
        best = float("inf")
        for _ in range(repeats):
            started = time.process_time()
            measure_image(pixels)
            best = min(best, time.process_time() - started)
        costs[f"{path.name} ({pixels.shape[1]}x{pixels.shape[0]})"] = round(1000 * best, 2)
    return {"ms_per_image": costs, "mean_ms": round(float(np.mean(list(costs.values()))), 2)}


def synthetic_hashes(count: int, settings: DedupSettings, seed: int, copy_share: float = 0.2) -> dict[str, np.ndarray]:
    """``count`` images of random hashes; ``copy_share`` of them copies of another (not a copy) with bits
    flipped within each distance and the same size (``planted``: the original of each copy, -1 otherwise)."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {
        kind: rng.integers(0, 2**64 - 1, count, dtype=np.uint64, endpoint=True) for kind in settings.hashes
    }
    sides = rng.integers(200, 2000, (count, 2))
    is_copy = rng.random(count) < copy_share
    copies, pool = np.flatnonzero(is_copy), np.flatnonzero(~is_copy)
    originals = pool[rng.integers(0, pool.size, copies.size)]
    for kind, limit in settings.max_distances().items():
        flips = np.zeros(copies.size, dtype=np.uint64)
        for copy_index, flipped in enumerate(rng.integers(0, limit + 1, copies.size)):
            for bit in rng.choice(64, int(flipped), replace=False):
                flips[copy_index] |= np.uint64(1) << np.uint64(bit)
        columns[kind][copies] = columns[kind][originals] ^ flips
    sides[copies] = sides[originals]
    planted = np.full(count, -1, dtype=np.int64)
    planted[copies] = originals
    columns |= {
        "width": sides[:, 0],
        "height": sides[:, 1],
        "source_uri": np.array([f"s3://bucket/{i:09d}.jpg" for i in range(count)]),
        "image_id": np.array([f"{i:064x}" for i in range(count)]),
        "planted": planted,
    }
    return columns


def brute_force_pairs(columns: dict[str, np.ndarray], settings: DedupSettings, block: int = 2048) -> int:
    """Pairs within every distance, comparing all pairs (in blocks of rows)."""
    count = len(columns["image_id"])
    found = 0
    for start in range(0, count, block):
        close = np.ones((min(block, count - start), count), dtype=bool)
        for kind, limit in settings.max_distances().items():
            close &= hamming(columns[kind][start : start + block, None], columns[kind][None, :]) <= limit
        rows = np.arange(start, start + close.shape[0])[:, None]
        found += int((close & (np.arange(count)[None, :] > rows)).sum())
    return found


def scaling(sizes: list[int], settings: DedupSettings, seed: int) -> dict[str, Any]:
    """CPU seconds of grouping ``sizes`` synthetic images with ``settings``, and the ratio."""
    result: dict[str, Any] = {}
    seconds = []
    for size in sizes:
        columns = synthetic_hashes(size, settings, seed)
        started = time.process_time()
        groups = group_near_duplicates(columns, settings)
        elapsed = time.process_time() - started
        seconds.append(elapsed)
        planted = np.flatnonzero(columns["planted"] >= 0)
        result[str(size)] = {
            "cpu_s": round(elapsed, 3),
            "us_per_image": round(1e6 * elapsed / size, 2),
            "plan": str(groups.plan),
            "candidates": groups.candidates,
            "pairs_found": int(groups.pairs["left"].size),
            "planted_copies_found": bool(
                (groups.component[planted] == groups.component[columns["planted"][planted]]).all()
            ),
        }
    result["ratio"] = round(seconds[-1] / seconds[0], 2)
    result["size_ratio"] = sizes[-1] / sizes[0]
    return result


def all_pairs(size: int, settings: DedupSettings, seed: int) -> dict[str, Any]:
    """All pairs compared by brute force, for reference, and whether banding finds as many."""
    columns = synthetic_hashes(size, settings, seed)
    started = time.process_time()
    pairs = brute_force_pairs(columns, settings)
    seconds = time.process_time() - started
    banded = pairs_within([columns[kind] for kind in settings.hashes], list(settings.max_distances().values()))
    return {"cpu_s": round(seconds, 3), "pairs": pairs, "same_count_as_banding": pairs == banded.left.size}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench near_dups", description=__doc__)
    parser.add_argument("--bases", type=int, default=300, help="groups in the generated set (7 images each)")
    parser.add_argument("--sizes", type=int, nargs=2, default=[20_000, 200_000], help="synthetic image counts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    default = DedupSettings()
    columns, truth, generated_ms = measure_generated(args.bases, args.seed)
    sweep = []
    for phash, dhash in SWEEP:
        hashes = tuple(kind for kind, limit in (("phash", phash), ("dhash", dhash)) if limit is not None)
        settings = DedupSettings(
            hashes=hashes,  # type: ignore[arg-type]
            phash_max_distance=phash or 0,
            dhash_max_distance=dhash or 0,
        )
        scores = evaluate(columns, truth, settings)
        sweep.append(
            {
                "phash": phash,
                "dhash": dhash,
                **{k: scores[k] for k in ("precision", "recall", "f0_5", "wrongly_skipped", "annotated")},
            }
        )
    return {
        "generated_set": {
            "images": len(columns["image_id"]),
            "groups": args.bases,
            "kinds": {str(k): int((truth["kind"] == k).sum()) for k in np.unique(truth["kind"])},
        },
        "default": {
            "phash_max_distance": default.phash_max_distance,
            "dhash_max_distance": default.dhash_max_distance,
            "max_aspect_change": default.max_aspect_change,
            **evaluate(columns, truth, default),
        },
        "sweep": sweep,
        "measures_ms_per_image": {"generated_mean": round(generated_ms, 2), "samples": measure_samples()},
        "grouping_scaling": {
            f"phash{d.phash_max_distance}_dhash{d.dhash_max_distance}": scaling(args.sizes, d, args.seed)
            for d in (default, TIGHT)
        },
        f"all_pairs_{args.sizes[0]}": all_pairs(args.sizes[0], default, args.seed),
    }


if __name__ == "__main__":
    from bench.report import print_table

    print_table("near_dups", main())
