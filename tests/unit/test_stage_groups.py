"""Consecutive CPU-only stages share one Ray Data step; a GPU stage runs alone."""

from __future__ import annotations

from dataclasses import dataclass

from engine.execute.stage_groups import group_stages
from schemas.stage import Resources


@dataclass(frozen=True)
class Planned:
    name: str
    resources: Resources
    holds_model: bool = True


def cpu(name: str, cpus: float = 1.0, batch: int = 4, pool: int = 1, model: bool = True) -> Planned:
    return Planned(name, Resources(num_cpus=cpus, batch_size=batch, pool_size=pool), model)


def gpu(name: str, fraction: float = 0.5) -> Planned:
    return Planned(name, Resources(num_cpus=1, num_gpus=fraction, batch_size=8))


def names(groups) -> list[str]:
    return [group.name for group in groups]


def test_consecutive_cpu_stages_share_a_step_and_a_gpu_stage_stands_alone() -> None:
    stages = [cpu("ocr"), cpu("haar"), gpu("florence2"), gpu("sam"), cpu("text"), cpu("nms", model=False)]
    assert names(group_stages(stages)) == ["ocr+haar", "florence2", "sam", "text+nms"]


def test_without_fusion_every_stage_is_its_own_step() -> None:
    stages = [cpu("ocr"), cpu("haar"), cpu("text")]
    assert names(group_stages(stages, fuse=False)) == ["ocr", "haar", "text"]


def test_a_group_asks_the_largest_cpu_share_and_pool_and_the_smallest_batch() -> None:
    (group,) = group_stages([cpu("ocr", 1.0, batch=4, pool=2), cpu("text", 0.25, batch=64, pool=1)])
    assert group.resources == Resources(num_cpus=1.0, num_gpus=0.0, batch_size=4, pool_size=2)


def test_a_group_is_an_actor_pool_when_any_stage_holds_a_model() -> None:
    tasks, actors = (
        group_stages([cpu("confidence", model=False), cpu("nms", model=False)]),
        group_stages([cpu("confidence", model=False), cpu("text", model=True)]),
    )
    assert [g.holds_model for g in tasks] == [False] and [g.holds_model for g in actors] == [True]


def test_no_stages_no_groups() -> None:
    assert group_stages([]) == []


def test_the_fld5b_order_fuses_each_run_of_cpu_stages_between_gpu_stages() -> None:
    from engine.config.profile import load_config

    stages = [Planned(s.name, s.resources) for s in load_config("fld5b").stages]
    assert names(group_stages(stages)) == [
        "florence2",
        "ocr",
        "detector",
        "text+confidence+geometry+nms+blacklist",
        "region_text",
        "agreement",
        "aggregator",
        "text_generated",
        "grounding",
        "sam",
        "final_confidence+final_geometry+final_nms+final_blacklist",
    ]


def test_filters_over_rows_without_image_bytes_take_a_whole_block_per_call() -> None:
    from engine.config.profile import parse_config
    from engine.execute.dataset import PIXEL_FREE_BLOCK_ROWS, step_batch_size
    from engine.execute.plan_stages import plan_stages

    settings = {
        "specialists": [{"name": "haar", "backend": "haar", "resources": {"batch_size": 4}}],
        "filters": [
            {"name": "confidence", "backend": "confidence", "resources": {"batch_size": 64}},
            {"name": "nms", "backend": "nms", "resources": {"batch_size": 512}},
        ],
        "ray": {"fuse_cpu_stages": False},
    }
    haar, confidence, nms = group_stages(plan_stages(parse_config(settings)), fuse=False)
    assert step_batch_size(confidence, pixel_free=True) == PIXEL_FREE_BLOCK_ROWS == 256
    assert step_batch_size(nms, pixel_free=True) == 512  # a larger batch_size stays
    assert step_batch_size(confidence, pixel_free=False) == 64  # rows carrying image bytes: as configured
    assert step_batch_size(haar, pixel_free=True) == 4  # a specialist's batch is what its model takes
