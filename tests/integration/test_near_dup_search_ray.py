"""Curation's near-duplicate pair search as Ray tasks finds exactly the pairs the in-process search does."""

from __future__ import annotations

import numpy as np
import pytest

from engine.execute.near_dup_search import pair_search, ray_parts
from filters.curation.hash_bands import IN_PROCESS, PairSearch, pairs_within
from tests.support.local_ray import local_ray


def _hashes(count: int, seed: int) -> np.ndarray:
    """Random hashes, every tenth one a copy of the one before with 0-7 bits flipped."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**63, count, dtype=np.uint64)
    flips = rng.integers(0, 8, count)
    for i in range(1, count, 10):
        noise = sum(1 << int(b) for b in rng.choice(64, int(flips[i]), replace=False))
        hashes[i] = hashes[i - 1] ^ np.uint64(noise)
    return hashes


@pytest.fixture(scope="module")
def ray_up():  # type: ignore[no-untyped-def]
    with local_ray():
        yield


def test_ray_tasks_find_the_same_pairs_as_the_driver(ray_up) -> None:  # type: ignore[no-untyped-def]
    hashes = [_hashes(20_000, 1), _hashes(20_000, 1) ^ np.uint64(0b1)]
    here = pairs_within(hashes, [8, 10])
    on_ray = pairs_within(hashes, [8, 10], search=PairSearch(ray_parts, 4))
    assert here.left.size >= 1500  # the planted copies
    assert (on_ray.left.tolist(), on_ray.right.tolist()) == (here.left.tolist(), here.right.tolist())
    assert on_ray.candidates == here.candidates


def test_a_small_run_searches_in_the_driver_without_starting_ray() -> None:
    started: list[bool] = []
    assert pair_search(5_000, lambda: started.append(True)) is IN_PROCESS and not started


def test_a_large_run_starts_ray_and_searches_in_slices_per_cpu(ray_up) -> None:  # type: ignore[no-untyped-def]
    started: list[bool] = []
    search = pair_search(10, lambda: started.append(True), min_images=10)
    assert started == [True]
    assert search.run_parts is ray_parts and search.splits_per_key == 4  # 2 per CPU of the 2-CPU Ray


def test_curation_in_ray_partitions_groups_in_a_task_whose_search_fans_out(ray_up) -> None:  # type: ignore[no-untyped-def]
    import ray

    from engine.ingest.curation import curate, curate_parts
    from engine.partitions.keys import split_by_id
    from engine.partitions.parts import Parts
    from engine.partitions.tasks import ON_RAY
    from filters.curation.settings import CurationSettings
    from tests.support.curation_corpus import curation_corpus

    work, references = curation_corpus(600)
    annotated = work.column("image_id").to_pylist()[::9]
    whole = curate(work, CurationSettings(), annotated, references)
    partitions = split_by_id(work, 4)
    on_ray = Parts([ray.put(t) for t in partitions], ON_RAY, [t.num_rows for t in partitions], work.schema)
    search = pair_search(work.num_rows, lambda: None, min_images=0)  # a Ray task per search part, from the task
    parts = curate_parts(on_ray, CurationSettings(), annotated, references, search)
    assert parts.skipped.gather().sort_by("source_uri").equals(whole.skipped.gather())
    assert parts.work.gather().equals(whole.work.gather())
    assert parts.tally.near_duplicates == whole.tally.near_duplicates >= 300
