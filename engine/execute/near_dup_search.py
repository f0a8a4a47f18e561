"""Curation's near-duplicate pair search on Ray: its parts (one joint key of hash bands, a slice of its
flip masks: ``filters.curation.hash_bands.SearchPart``) run as Ray tasks across the cluster, the hashes
put in the object store once; the driver gets back only the pairs each part found.

Below :data:`DISTRIBUTE_MIN_IMAGES` images the search stays in the driver (a Ray task's start costs more
than it saves), and Ray is not started for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import ray

from filters.curation.hash_bands import IN_PROCESS, KeyPlan, PairSearch, PartPairs, SearchPart, pairs_of_part

DISTRIBUTE_MIN_IMAGES = 100_000
PARTS_PER_CPU = 2  # slices per joint key for each CPU of the cluster: tasks that finish early take the next


def pair_search(images: int, start_ray: Callable[[], None], min_images: int = DISTRIBUTE_MIN_IMAGES) -> PairSearch:
    """How to search ``images`` images' hashes: in this process below ``min_images``, else as Ray tasks
    (``start_ray`` called first: the run's ``LazyRay.start``), each joint key cut into ``PARTS_PER_CPU``
    slices per cluster CPU."""
    if images < min_images:
        return IN_PROCESS
    start_ray()
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    return PairSearch(ray_parts, PARTS_PER_CPU * cpus)


def ray_parts(
    hashes: Sequence[np.ndarray], max_distances: Sequence[int], plan: KeyPlan, parts: list[SearchPart]
) -> Iterator[PartPairs]:
    """Each part's pairs, from one Ray task per part, in the order they finish."""
    shared = ray.put(list(hashes))
    pending = [_search_part.remote(shared, list(max_distances), plan, part) for part in parts]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])


@ray.remote(num_cpus=1, max_retries=3)
def _search_part(hashes: list[np.ndarray], max_distances: list[int], plan: KeyPlan, part: SearchPart) -> PartPairs:
    return pairs_of_part(hashes, max_distances, plan, part)
