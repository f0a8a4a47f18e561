"""Which configured stages share one Ray Data step: consecutive CPU-only stages.

Ray Data fuses consecutive task steps but never actor steps, so a profile of small CPU stages
(rapidocr, Haar cascades, GrabCut, then five filters) would otherwise start an actor process per
stage (each costs seconds of CPU to start and import), load spaCy in two of them, and convert every
batch Arrow -> records -> Arrow once per stage. A group runs its stages in order in one worker, on
one conversion and at most one decode per image, as a plain loop would. A GPU stage always runs
alone, so its ``num_gpus`` fraction packs actors as configured, and the CPU stages around it scale
on their own.

A group's resources: its stages run one after another in one process, so it asks the largest
``num_cpus`` of its stages (not the sum), the largest ``pool_size``, and the smallest
``batch_size`` (a batch of decoded images fits the most memory-hungry member).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from schemas.stage import Resources


class GroupableStage(Protocol):
    """What grouping needs of a planned stage (``engine.execute.plan_stages.PlannedStage``)."""

    holds_model: bool

    @property
    def name(self) -> str: ...

    @property
    def resources(self) -> Resources: ...


@dataclass(frozen=True)
class StageGroup:
    stages: tuple[GroupableStage, ...]

    @property
    def name(self) -> str:
        return "+".join(stage.name for stage in self.stages)

    @property
    def holds_model(self) -> bool:
        """Whether the group runs as an actor pool (some stage holds a model) rather than as tasks."""
        return any(stage.holds_model for stage in self.stages)

    @property
    def resources(self) -> Resources:
        members = [stage.resources for stage in self.stages]
        return Resources(
            num_cpus=max(r.num_cpus for r in members),
            num_gpus=max(r.num_gpus for r in members),
            batch_size=min(r.batch_size for r in members),
            pool_size=max(r.pool_size for r in members),
        )


def group_stages(stages: Sequence[GroupableStage], fuse: bool = True) -> list[StageGroup]:
    """Consecutive CPU-only stages in one group each (every stage alone without ``fuse``)."""
    groups: list[list[GroupableStage]] = []
    for stage in stages:
        previous = groups[-1][-1] if groups else None
        joins = fuse and previous is not None and previous.resources.num_gpus == 0 and stage.resources.num_gpus == 0
        if joins:
            groups[-1].append(stage)
        else:
            groups.append([stage])
    return [StageGroup(tuple(group)) for group in groups]
