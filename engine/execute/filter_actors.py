"""Pixel-free filter steps on actors started ahead of time, while probing runs.

A run whose stages are all filters that read only annotation rows (a filters-only profile, a re-filter of
carried rows) would otherwise wait at the start of its annotate phase while Ray Data starts the step's actor
pool: a worker process, the filters' imports, spaCy loaded; seconds in which the rows are ready and the
cluster idles. :class:`FilterActors` starts the same actors (``StageChainWorker``, each holding its step's
CPUs) as soon as Ray is up, so their start-up overlaps probing, and then runs the rows through them block by
block, each step's output going by reference to the next step and to the shard writers: no Ray Data
executor, no row in the driver. What the filters write is the same as through Ray Data: the same stage
chain runs over the same rows (``engine/execute/stage_runner.py``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from engine.config.registry import FILTERS
from engine.config.settings import EngineConfig
from engine.execute.dataset import PIXEL_FREE_BLOCK_ROWS, split_blocks
from engine.execute.plan_stages import PlannedStage
from engine.execute.stage_groups import StageGroup, group_stages
from engine.execute.stage_runner import StageChainWorker

# Blocks sent ahead to each actor: one running, one waiting, so an actor never idles between blocks.
AHEAD_PER_ACTOR = 2


def runs_on_filter_actors(stages: list[PlannedStage], config: EngineConfig) -> bool:
    """Whether ``stages`` qualify: all filters, none needing pixels, and each step an actor pool (a stage
    that holds a model, as the spaCy filters do), so the actors take exactly the CPUs the pools would."""
    if not stages or any(stage.kind != FILTERS or stage.needs_pixels for stage in stages):
        return False
    return all(group.holds_model for group in group_stages(stages, config.ray.fuse_cpu_stages))


class FilterActors:
    """The actor pools of pixel-free filter steps, started at construction (Ray must be up); see the module
    docstring. ``close`` ends them."""

    def __init__(self, stages: list[PlannedStage], config: EngineConfig) -> None:
        import ray

        self.stages = stages
        self.pools: list[list[Any]] = []
        for position, group in enumerate(group_stages(stages, config.ray.fuse_cpu_stages)):
            self.pools.append(_start_pool(ray, group, config.ingest.max_pixels, False if position == 0 else None))

    def run(self, rows: pa.Table) -> Iterator[tuple[Any, None]]:
        """``rows`` (annotation schema) through every step, a block at a time as the pixel-free Ray Data path
        cuts them (``PIXEL_FREE_BLOCK_ROWS``); see :meth:`run_blocks`."""
        return self.run_blocks(split_blocks(rows, PIXEL_FREE_BLOCK_ROWS))

    def run_blocks(self, blocks: Iterable[Any]) -> Iterator[tuple[Any, None]]:
        """Blocks of annotation rows (tables, or references to them) through every step: the reference of each
        output block as it is submitted (with None: the whole block is output, as
        ``engine.execute.shard_workers.block_refs`` yields), a few blocks ahead of the consumer so every actor
        stays busy."""
        ahead: deque[Any] = deque()
        window = AHEAD_PER_ACTOR * max(len(pool) for pool in self.pools)
        for index, block in enumerate(blocks):
            ref: Any = block
            for pool in self.pools:
                ref = pool[index % len(pool)].__call__.remote(ref)
            ahead.append(ref)
            if len(ahead) >= window:
                yield ahead.popleft(), None
        while ahead:
            yield ahead.popleft(), None

    def close(self) -> None:
        import ray

        for pool in self.pools:
            for actor in pool:
                ray.kill(actor)
        self.pools = []


def _start_pool(ray: Any, group: StageGroup, max_pixels: int, read_bytes: bool | None) -> list[Any]:
    resources = group.resources
    worker = type(group.name, (StageChainWorker,), {"__qualname__": group.name})
    # As Ray Data's pools: a dead actor restarts and its calls are retried.
    options: dict[str, Any] = {"num_cpus": resources.num_cpus, "max_restarts": -1, "max_task_retries": -1}
    if resources.num_gpus:
        options["num_gpus"] = resources.num_gpus
    configs = [stage.config for stage in group.stages]  # type: ignore[attr-defined]
    remote = ray.remote(worker).options(**options)
    return [remote.remote(configs, max_pixels, read_bytes) for _ in range(resources.pool_size)]
