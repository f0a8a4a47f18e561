"""The Ray Data pipeline over rows of the annotation schema: one streaming ``map_batches`` step per stage group.

Groups holding a model run in actor pools that set their stages up once; the others run as tasks that
keep one set-up copy of each stage per worker process. The first step reads each image's bytes where it
decodes them. Small pixel-free reruns (filters only) run in this process instead, where Ray would cost more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import pyarrow as pa

from engine.config.registry import FILTERS
from engine.config.settings import EngineConfig, StageConfig
from engine.config.typed_config import ConfigError
from engine.execute.plan_stages import PlannedStage
from engine.execute.ray_session import LazyRay
from engine.execute.stage_groups import StageGroup, group_stages
from engine.execute.stage_runner import StageChainWorker, run_step, set_up
from engine.execute.worker_deaths import DeathGuardedChain
from engine.ingest.image_bytes import attach_image_bytes

MAX_INPUT_BLOCKS = 1000
LOADER_CPUS = 0.25
# A model step's guard actor only passes batches to its inner worker, which holds the step's CPUs and GPUs.
GUARD_CPUS = 0.0
# Filter reruns of at most this many rows run in this process when nothing else needs Ray.
IN_PROCESS_ROWS = 2000
PIXEL_FREE_BLOCK_ROWS = 256

_TASK_STAGES: dict[str, Any] = {}
# Setup seconds of task stages set up in this worker process and not yet reported in an output batch.
_TASK_LOADS: dict[str, float] = {}


def _task_stage(stage_config: StageConfig) -> Any:
    """One set-up stage per worker process and configuration (keyed by repr: options may hold dicts)."""
    key = repr(stage_config)
    if key not in _TASK_STAGES:
        stage = stage_config.create()
        _TASK_LOADS.update(set_up([stage]))
        _TASK_STAGES[key] = stage
    return _TASK_STAGES[key]


def _run_task_group(
    batch: pa.Table, stages: tuple[StageConfig, ...], max_pixels: int, read_bytes: bool | None
) -> pa.Table:
    return run_step([_task_stage(config) for config in stages], batch, max_pixels, read_bytes, _TASK_LOADS)


def _named_guard(group_name: str) -> type:
    """The guard actor class of one stage group, named after it: Ray's process titles and progress bars then
    say ``MapBatches(ocr+haar)`` rather than one class name for every stage (its inner worker is named so too)."""
    return type(group_name, (DeathGuardedChain,), {"__qualname__": group_name})


def _named_worker(group_name: str) -> type:
    """The actor class of an unguarded model step (:func:`needs_death_guard`), named after its group."""
    return type(group_name, (StageChainWorker,), {"__qualname__": group_name})


def needs_death_guard(group: StageGroup) -> bool:
    """Whether ``group``'s step runs behind a death guard (``worker_deaths``): when one of its stages is a
    specialist or takes pixels, an input (a huge or strange image) can kill its worker every time. Filters that
    read only annotation rows (a spaCy text filter, the blacklist) have no such input: their actors run as the
    step's own actor pool, one process and one Ray hop per batch less."""
    return any(stage.kind != FILTERS or stage.needs_pixels for stage in group.stages)  # type: ignore[attr-defined]


def _named_task(group_name: str) -> Callable[..., pa.Table]:
    def run(batch: pa.Table, **kwargs: Any) -> pa.Table:
        return _run_task_group(batch, **kwargs)

    run.__name__ = run.__qualname__ = group_name
    return run


def check_capacity(groups: list[StageGroup]) -> None:
    """Fail clearly when the stages cannot all run at once: Ray Data would otherwise wait forever.

    Actor pools hold their CPUs for the whole run, so beside them there must remain room for the
    largest task (the byte loader or a filter task), or the stream deadlocks.
    """
    import ray

    resources = ray.cluster_resources()
    largest_task = max([LOADER_CPUS] + [g.resources.num_cpus for g in groups if not g.holds_model])
    for name, total in (("CPU", "num_cpus"), ("GPU", "num_gpus")):
        demand = sum(getattr(g.resources, total) * g.resources.pool_size for g in groups if g.holds_model)
        needed = demand + (largest_task if name == "CPU" else 0.0)
        available = resources.get(name, 0.0)
        if needed > available + 1e-9:
            raise ConfigError(
                f"the stages need {needed:g} {name}s at once (actor pools {demand:g}"
                + (f" + the largest task {largest_task:g}" if name == "CPU" else "")
                + f") but Ray has {available:g}; lower resources.{total} or pool_size in the profile, "
                "or give Ray more (ray.num_cpus / a cluster)"
            )


def split_blocks(table: pa.Table, rows_per_block: int) -> list[pa.Table]:
    """``table`` in about ``rows_per_block``-row slices (at most ``MAX_INPUT_BLOCKS``; one for an empty table)."""
    count = min(MAX_INPUT_BLOCKS, max(1, table.num_rows // max(1, rows_per_block)))
    size = -(-table.num_rows // count)
    return [table.slice(start, size) for start in range(0, table.num_rows, size)] or [table]


class RowSource(Protocol):
    """Rows that make their own Ray dataset (``engine.execute.annotate_input.RowsToAnnotate``)."""

    def dataset(self, block_rows: int, read_order: bool) -> Any: ...


def build_dataset(
    rows: pa.Table | RowSource, stages: list[PlannedStage], config: EngineConfig, read_pixels: bool = True
) -> Any:
    """The lazy Ray Data pipeline over ``rows`` (annotation schema; a table here, or a source that makes its
    dataset, in read order when pixels are read): attach bytes, then one ``map_batches`` per stage group. No
    file is read without ``read_pixels`` or when no stage needs pixels (a filters-only profile): the image's
    identity and measures come from probing, so its bytes would only travel unused."""
    import ray

    read_pixels = read_pixels and (not stages or any(stage.needs_pixels for stage in stages))
    # Blocks are the streaming unit; without file reads, larger blocks cost less scheduling. ``from_blocks``
    # takes each block's metadata here, where ``from_arrow`` would run a Ray task per block for it.
    block_rows = config.ray.decode_batch_size if read_pixels else PIXEL_FREE_BLOCK_ROWS
    if isinstance(rows, pa.Table):
        ds = ray.data.from_blocks(split_blocks(rows, block_rows))
    else:
        ds = rows.dataset(block_rows, read_order=read_pixels)
    groups = group_stages(stages, config.ray.fuse_cpu_stages)
    if not groups:
        return ds.map_batches(
            attach_image_bytes, fn_kwargs={"read": read_pixels}, batch_format="pyarrow", num_cpus=LOADER_CPUS
        )
    for position, group in enumerate(groups):
        # The first step reads each image's bytes where it decodes them: no loader processes, one hop less.
        read_bytes = read_pixels if position == 0 else None
        batch_size = step_batch_size(group, pixel_free=not read_pixels)
        ds = _add_step(ds, group, config.ingest.max_pixels, read_bytes, config.ray.worker_death_retries, batch_size)
    return ds


def step_batch_size(group: StageGroup, pixel_free: bool) -> int:
    """The rows of one call of ``group``'s step: its ``batch_size``, except that filters over rows without
    image bytes (``pixel_free``) take at least a whole block (``PIXEL_FREE_BLOCK_ROWS``). Their rows are a few
    hundred bytes and each call costs a hop between Ray processes, more than the filters' work on 64 rows;
    a filter decides each image on its own, so what it writes does not depend on the batch."""
    size = group.resources.batch_size
    if pixel_free and all(stage.kind == FILTERS for stage in group.stages):  # type: ignore[attr-defined]
        return max(size, PIXEL_FREE_BLOCK_ROWS)
    return size


def _add_step(
    ds: Any, group: StageGroup, max_pixels: int, read_bytes: bool | None, death_retries: int, batch_size: int
) -> Any:
    """One ``map_batches`` step running ``group``'s stages: when one holds a model, an actor pool of guards
    whose inner workers hold the step's resources and whose deaths are bounded (``worker_deaths``); else tasks."""
    from ray.data import ActorPoolStrategy

    stages = tuple(stage.config for stage in group.stages)  # type: ignore[attr-defined]
    arguments = {"stages": stages, "max_pixels": max_pixels, "read_bytes": read_bytes}
    resources = group.resources
    common: dict[str, Any] = {"batch_format": "pyarrow", "batch_size": batch_size}
    if group.holds_model and needs_death_guard(group):
        guard = {"resources": resources, "retries": death_retries, "name": group.name}
        return ds.map_batches(
            _named_guard(group.name),
            fn_constructor_kwargs={**arguments, **guard},
            compute=ActorPoolStrategy(size=resources.pool_size),
            num_cpus=GUARD_CPUS,
            **common,
        )
    common["num_cpus"] = resources.num_cpus
    if resources.num_gpus:
        common["num_gpus"] = resources.num_gpus
    if group.holds_model:
        return ds.map_batches(
            _named_worker(group.name),
            fn_constructor_kwargs=arguments,
            compute=ActorPoolStrategy(size=resources.pool_size),
            **common,
        )
    return ds.map_batches(_named_task(group.name), fn_kwargs=arguments, **common)


def streamed(dataset: Any) -> Iterator[pa.Table]:
    """The output batches of a Ray dataset as they are ready, in Arrow."""
    return dataset.iter_batches(batch_format="pyarrow", batch_size=None)


def run_in_process(rows: pa.Table, stages: list[PlannedStage], config: EngineConfig) -> Iterator[pa.Table]:
    """The pixel-free stages over ``rows`` in this process (small filter reruns, where Ray would cost more)."""
    created = [stage.config.create() for stage in stages]
    loads = set_up(created)
    for batch in split_blocks(rows, PIXEL_FREE_BLOCK_ROWS):
        yield run_step(created, batch, config.ingest.max_pixels, read_bytes=False, loads=loads)


def refilter_on_ray(rows: int, ray: LazyRay) -> bool:
    """Whether a pixel-free filter rerun over ``rows`` rows goes to Ray (already up, or the rows are many)
    rather than :func:`run_in_process`."""
    return ray.started or rows > IN_PROCESS_ROWS
