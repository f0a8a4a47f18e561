"""Pixel-free filter stages on actors started ahead of the annotate phase write what Ray Data's pipeline and
the in-process runner write, hold their CPUs from their start, and free them when the run ends."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from engine.config.profile import load_config
from engine.execute.dataset import run_in_process
from engine.execute.filter_actors import FilterActors
from engine.execute.plan_stages import plan_stages
from engine.execute.stage_timing import split_timings
from schemas.arrow import ANNOTATION_SCHEMA
from schemas.records import ImageRecord, Provenance, Region, Text
from tests.support.local_ray import local_ray

CAPTIONER = Provenance("captioner", "blip")
DETECTOR = Provenance("detector", "dino")
TEXTS = ["a dog", "A brown dog runs across a green field next to a wooden fence.", "image", "it is a thing"]
LABELS = ["dog", "object", "fence", "thing"]


@pytest.fixture(scope="module")
def ray_local():
    with local_ray():
        yield


def filters_only(pool_size: int = 1):
    config = load_config("offline")
    filters = tuple(
        replace(f, resources=replace(f.resources, pool_size=pool_size)) if f.name == "text" else f
        for f in config.filters
    )
    return replace(config, specialists=(), filters=filters, ray=replace(config.ray, num_cpus=2))


def annotated_rows(count: int) -> pa.Table:
    """``count`` rows as a specialist step would leave them: texts to parse, boxes to score and suppress."""
    rows = []
    for i in range(count):
        text = Text("brief", TEXTS[i % len(TEXTS)], CAPTIONER)
        regions = [
            Region("object", (10, 10, 60, 60), LABELS[i % len(LABELS)], DETECTOR, score=0.9),
            Region("object", (12, 12, 62, 62), LABELS[i % len(LABELS)], DETECTOR, score=0.5),  # overlaps
            Region("object", (70, 5, 90, 40), "cat", DETECTOR, score=0.1 + (i % 5) * 0.1),
        ]
        record = ImageRecord(f"{i:064x}", f"/in/{i}.png", 100, 80, "png", [f"/in/{i}.png"], [text], regions)
        rows.append(record.to_row())
    return pa.Table.from_pylist(rows, schema=ANNOTATION_SCHEMA)


def comparable(tables: list[pa.Table]) -> list[dict]:
    rows = [row for table in tables for row in split_timings(table)[0].drop_columns(["image_bytes"]).to_pylist()]
    return sorted(rows, key=lambda row: row["image_id"])


def test_filter_actors_write_what_the_in_process_runner_writes(ray_local) -> None:
    import ray

    config = filters_only(pool_size=2)
    stages = plan_stages(config)
    rows = annotated_rows(600)  # three blocks of 200 rows, round robin over two text actors
    actors = FilterActors(stages, config)
    try:
        on_actors = comparable([ray.get(ref) for ref, part in actors.run(rows)])
    finally:
        actors.close()
    here = comparable(list(run_in_process(rows, stages, config)))
    assert len(on_actors) == 600 and on_actors == here
    rules = {drop["rule"] for row in on_actors for drop in row["dropped"]}
    assert {"too_short", "min_score", "nms", "blacklisted_label"} <= rules  # the filters did drop things
    assert all({name for name, _ in row["stages"]} == {s.name for s in stages} for row in on_actors)


def test_filter_actors_hold_their_cpus_from_their_start_and_free_them_at_close(ray_local) -> None:
    import ray

    config = filters_only()
    actors = FilterActors(plan_stages(config), config)  # one fused step: 0.25 CPU
    try:
        assert wait_for(lambda: ray.available_resources().get("CPU", 0.0) == pytest.approx(1.75))
    finally:
        actors.close()
    assert wait_for(lambda: ray.available_resources().get("CPU", 0.0) == pytest.approx(2.0))


def test_a_filters_only_run_on_ray_annotates_every_image_and_frees_the_actors(ray_local, tmp_path) -> None:
    import ray

    from engine.run import RunRequest, run_pipeline
    from engine.store.reader import read_version

    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), np.uint8)).save(folder / f"{i:02d}.png")
    config = filters_only()
    request = RunRequest((str(folder),), tmp_path / "out", config, progress_bars=False)
    result = run_pipeline(request, progress=lambda _: None)
    rows = read_version(tmp_path / "out").to_pylist()
    assert result.annotated == 40 and len(rows) == 40 and sum(s.rows for s in result.manifest.shards) == 40
    assert all(row["errors"] == [] for row in rows)
    assert all({name for name, _ in row["stages"]} == {f.name for f in config.filters} for row in rows)
    assert wait_for(lambda: ray.available_resources().get("CPU", 0.0) == pytest.approx(2.0))


def wait_for(condition, seconds: float = 20.0) -> bool:
    """Whether ``condition`` holds within ``seconds`` (Ray frees a killed actor's resources asynchronously)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
