"""A profile written with its keys in another order, at every depth, is the same pipeline: a rerun redoes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.config.profile import load_config, parse_config
from engine.run import RunRequest, RunResult, run_pipeline
from engine.store.reader import read_version
from schemas.fingerprint import canonical
from specialists.detect_haar import CASCADES
from tests.support.local_ray import local_ray

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "images"
IMAGES = ("astronaut.jpg", "text_sign.png", "chelsea.jpg")


def reversed_keys(value: Any) -> Any:
    """``value`` with the keys of every mapping, at every depth, in reverse order (lists keep theirs)."""
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in reversed(value)}
    if isinstance(value, list):
        return [reversed_keys(item) for item in value]
    return value


def offline_profile() -> dict:
    """The offline profile as plain data, with the Haar cascades written out (a nested mapping of a specialist)."""
    config = load_config("offline")
    specialists = [canonical(stage) for stage in config.specialists]
    for stage in specialists:
        if stage["backend"] == "haar":
            stage["options"]["cascades"] = dict(CASCADES)
    return {
        "specialists": specialists,
        "filters": [canonical(stage) for stage in config.filters],
        "writer": {"rows_per_shard": 2, "row_group_rows": 2},
        "ray": {"num_cpus": 2},
    }


def run(inputs: Path, output: Path, profile: dict, always_publish: bool = False) -> RunResult:
    config = parse_config(profile)
    request = RunRequest((str(inputs),), output, config, progress_bars=False, always_publish=always_publish)
    return run_pipeline(request, progress=lambda _: None)


@pytest.fixture(scope="module")
def ray_local():
    with local_ray():
        yield


@pytest.mark.slow
def test_rerun_with_reordered_option_keys_carries_every_row_over(ray_local, tmp_path) -> None:
    inputs, output = tmp_path / "inputs", tmp_path / "out"
    inputs.mkdir()
    for name in IMAGES:
        shutil.copy(SAMPLES / name, inputs / name)
    profile = offline_profile()
    reordered = reversed_keys(profile)
    haar = next(s for s in reordered["specialists"] if s["backend"] == "haar")
    confidence = next(s for s in reordered["filters"] if s["backend"] == "confidence")
    assert list(haar["options"]["cascades"]) == list(reversed(CASCADES))
    assert list(confidence["options"]["min_score_by_kind"]) == ["ocr_word", "ocr_line", "object"]

    first = run(inputs, output, profile)
    # Published even though nothing changed (a run that changes nothing publishes nothing, and whether the
    # probe cache vouches for the fresh copies depends on their age), so the two versions can be compared.
    second = run(inputs, output, reordered, always_publish=True)

    assert first.annotated == len(IMAGES)
    assert (second.annotated, second.reannotated, second.refiltered, second.carried) == (0, 0, 0, len(IMAGES))
    assert second.manifest.stages == first.manifest.stages
    assert second.manifest.config_fingerprint == first.manifest.config_fingerprint
    assert read_version(output, 2).sort_by("image_id").equals(read_version(output, 1).sort_by("image_id"))
