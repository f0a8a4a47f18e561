"""The annotate phase's actors, started as soon as Ray is up rather than when the first rows are ready.

Ray starts for probing when there are many new files; the annotate phase follows. Its shard writers, and for
stages that are all pixel-free filters their actors (``engine/execute/filter_actors.py``), start then, so
their processes, imports and models load while probing runs. They hold their CPUs from then on, so they
start only if a probe task still fits beside them; otherwise they start when the annotate phase needs them.
"""

from __future__ import annotations

from engine.config.settings import EngineConfig
from engine.execute.filter_actors import FilterActors, runs_on_filter_actors
from engine.execute.plan_stages import PlannedStage
from engine.execute.sink import AnnotationSink
from engine.execute.stage_groups import group_stages
from engine.ingest.probe import PROBE_TASK_CPUS


class StartedAhead:
    """The run's :class:`AnnotationSink` and, for pixel-free filter stages, their :class:`FilterActors`;
    :meth:`start` when Ray is up, :meth:`close` at the end of the run (the sink is closed by the run)."""

    def __init__(self, sink: AnnotationSink, stages: list[PlannedStage], config: EngineConfig) -> None:
        self.sink, self.stages, self.config = sink, stages, config
        self.filters: FilterActors | None = None
        self.on_filter_actors = runs_on_filter_actors(stages, config)

    def start(self) -> None:
        """Start the writers, and the filter actors when the stages run on them and a probe task still fits."""
        import ray

        self.sink.start_writers()
        cpus = ray.cluster_resources().get("CPU", 0.0)
        if self.on_filter_actors and self.filters is None and probe_task_fits(cpus, self.stages, self.config):
            self.filters = FilterActors(self.stages, self.config)

    def filter_actors(self) -> FilterActors | None:
        """The filter actors (started now if they were not), or None when the stages do not run on them."""
        if self.on_filter_actors and self.filters is None:
            self.filters = FilterActors(self.stages, self.config)
        return self.filters

    def close(self) -> None:
        """End the filter actors (nothing to do once Ray is down: they went with it)."""
        import ray

        if self.filters is not None and ray.is_initialized():
            self.filters.close()
        self.filters = None


def probe_task_fits(cluster_cpus: float, stages: list[PlannedStage], config: EngineConfig) -> bool:
    """Whether one probe task fits beside the actor pools of ``stages`` on ``cluster_cpus`` CPUs (if not,
    actors started ahead would leave probing waiting for ever)."""
    groups = group_stages(stages, config.ray.fuse_cpu_stages)
    held = sum(group.resources.num_cpus * group.resources.pool_size for group in groups if group.holds_model)
    return cluster_cpus - held >= PROBE_TASK_CPUS - 1e-9
