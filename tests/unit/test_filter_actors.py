"""Which steps run where: pixel-free filter stages on actors started ahead, death guards only where an input
can kill a worker, and no actor started ahead that would leave probing without a CPU (no Ray needed)."""

from __future__ import annotations

from dataclasses import replace

from engine.config.profile import load_config, parse_config
from engine.execute.dataset import needs_death_guard
from engine.execute.filter_actors import runs_on_filter_actors
from engine.execute.plan_stages import plan_stages
from engine.execute.stage_groups import group_stages
from engine.execute.started_ahead import probe_task_fits


def filters_only(**ray: object):
    config = load_config("offline")
    return replace(config, specialists=(), ray=replace(config.ray, **ray))


def test_a_filters_only_profile_runs_on_filter_actors_and_a_profile_with_specialists_does_not() -> None:
    config = filters_only()
    assert runs_on_filter_actors(plan_stages(config), config)
    offline = load_config("offline")
    assert not runs_on_filter_actors(plan_stages(offline), offline)
    assert not runs_on_filter_actors([], config)


def test_unfused_filters_without_a_model_are_ray_data_tasks_not_filter_actors() -> None:
    config = filters_only(fuse_cpu_stages=False)  # confidence, geometry, nms alone hold no model: tasks
    assert not runs_on_filter_actors(plan_stages(config), config)


def test_only_steps_with_a_specialist_or_pixels_run_behind_a_death_guard() -> None:
    settings = {
        "specialists": [{"name": "haar", "backend": "haar"}],
        "filters": [{"name": "text", "backend": "spacy_text"}, {"name": "blacklist", "backend": "blacklist"}],
        "ray": {"fuse_cpu_stages": False},
    }
    haar, text, blacklist = group_stages(plan_stages(parse_config(settings)), fuse=False)
    assert all(group.holds_model for group in (haar, text, blacklist))
    assert needs_death_guard(haar)  # an image can kill a model's worker every time
    assert not needs_death_guard(text) and not needs_death_guard(blacklist)  # spaCy on texts: a plain pool
    (whole,) = group_stages(plan_stages(load_config("offline")))
    assert needs_death_guard(whole)  # rapidocr, Haar and GrabCut share the step with the filters


def test_filter_actors_start_ahead_only_if_a_probe_task_still_fits_beside_them() -> None:
    config = filters_only()
    stages = plan_stages(config)  # one fused step: 0.25 CPU, pool_size 1
    assert probe_task_fits(3.0, stages, config) and probe_task_fits(1.25, stages, config)
    assert not probe_task_fits(1.0, stages, config)
    wide = parse_config(
        {"filters": [{"name": "text", "backend": "spacy_text", "resources": {"num_cpus": 1, "pool_size": 2}}]}
    )
    assert not probe_task_fits(2.5, plan_stages(wide), wide) and probe_task_fits(3.0, plan_stages(wide), wide)
