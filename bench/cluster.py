"""Local Ray pinned to chosen cores, and profiles scaled to a number of workers per model stage.

Ray's processes inherit the driver's CPU affinity at ``ray.init``, so pinning the driver first
confines the whole local cluster (raylet, workers, actors) to those cores: a "1 worker" run
really has one core, the same as the plain loop it is compared with.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from engine.config.settings import EngineConfig, StageConfig

# Logical CPUs Ray gets beyond the model actors' share: room for the probe, load and task stages.
TASK_CPUS = 1


@contextmanager
def pinned(cores: set[int]) -> Iterator[None]:
    """Run the block with this process (and anything it starts) on ``cores`` only."""
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def cores_for(workers: int) -> set[int]:
    available = sorted(os.sched_getaffinity(0))
    if workers > len(available):
        raise ValueError(f"{workers} workers asked for but this process may use only {len(available)} cores")
    return set(available[:workers])


@contextmanager
def local_ray(workers: int) -> Iterator[float]:
    """A local Ray on ``workers`` cores with ``workers + TASK_CPUS`` logical CPUs; yields its start seconds."""
    import time

    import ray

    with pinned(cores_for(workers)):
        started = time.perf_counter()
        ray.init(
            num_cpus=workers + TASK_CPUS,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
            configure_logging=True,
        )
        try:
            yield time.perf_counter() - started
        finally:
            ray.shutdown()


def model_stage(stage: StageConfig) -> bool:
    return stage.create().holds_model


def scaled_config(config: EngineConfig, workers: int) -> EngineConfig:
    """``config`` with ``workers`` actors per model stage, all model actors together asking ``workers`` CPUs."""
    model_stages = sum(model_stage(s) for s in config.stages)
    share = 1.0 / max(1, model_stages)

    def scale(stage: StageConfig) -> StageConfig:
        if not model_stage(stage):
            return stage
        return replace(stage, resources=replace(stage.resources, num_cpus=share, pool_size=workers))

    return replace(
        config,
        specialists=tuple(scale(s) for s in config.specialists),
        filters=tuple(scale(s) for s in config.filters),
        ray=replace(config.ray, num_cpus=workers + TASK_CPUS),
    )
