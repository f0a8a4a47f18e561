"""A run whose listing is cut into several parts probes them as Ray tasks: it annotates what a run in one part
annotates, publishes its probe index in parts written by the workers, and a refresh reuses them
where files are unchanged; a rerun publishes nothing. A refresh in parts re-annotates and re-filters (its rows
to rerun kept where carry-over's batches ran) what a refresh in one part does."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine.config.profile import parse_config
from engine.run import RunRequest, RunResult, run_pipeline
from engine.store.reader import read_version, version_dataset
from tests.support.image_files import jpeg_bytes
from tests.support.local_ray import local_ray


def profile(part_rows: int, haar: dict | None = None, filters: list | None = None) -> dict:
    return {
        "specialists": [{"name": "haar", "backend": "haar", "options": haar or {}, "resources": {"batch_size": 4}}],
        "filters": filters or [],
        "ray": {"num_cpus": 2, "plan_part_rows": part_rows, "plan_min_piece_rows": 0},
    }


@pytest.fixture(scope="module")
def ray_local():
    with local_ray():
        yield


def run(inputs: Path, output: Path, part_rows: int, **changes) -> RunResult:
    request = RunRequest((str(inputs),), output, parse_config(profile(part_rows, **changes)), progress_bars=False)
    return run_pipeline(request, progress=lambda _: None)


def test_a_run_in_parts_matches_a_run_in_one_and_its_rerun_reuses_the_parts(ray_local, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(11):
        (inputs / f"{i:02d}.jpg").write_bytes(jpeg_bytes(96, 72, seed=i % 9))  # 09 and 10 copy 00 and 01
    (inputs / "broken.jpg").write_bytes(b"not an image")
    old = time.time() - 3600  # older than the probe cache's racy window: the rerun trusts the index
    for path in inputs.iterdir():
        os.utime(path, (old, old))
    whole = run(inputs, tmp_path / "one", 1000)
    parts = run(inputs, tmp_path / "parts", 3)
    assert (parts.annotated, parts.quarantined, parts.files) == (whole.annotated, whole.quarantined, 12) == (9, 1, 12)
    one_rows = read_version(tmp_path / "one").sort_by("image_id")
    part_rows = read_version(tmp_path / "parts").sort_by("image_id")
    assert part_rows.column("image_id").to_pylist() == one_rows.column("image_id").to_pylist()
    assert part_rows.column("source_uris").to_pylist() == one_rows.column("source_uris").to_pylist()
    # the quarantine, written by the task of the id partition that found it, as the run in one part writes it
    one_bad, parts_bad = (version_dataset(tmp_path / name, quarantine=True).to_table() for name in ("one", "parts"))
    assert parts_bad.equals(one_bad) and parts_bad.column("reason").to_pylist() == ["not_an_image"]
    (shard,) = parts.manifest.quarantine
    assert shard.path.startswith("quarantine/part-") and shard.counts == {"total": 1, "not_an_image": 1}
    (inputs / "03.jpg").write_bytes(jpeg_bytes(96, 72, seed=30))  # new content: probed again, the rest reused
    os.utime(inputs / "03.jpg", (old, old))
    refresh = run(inputs, tmp_path / "parts", 3)
    assert (refresh.probe_cached, refresh.annotated, refresh.tombstoned) == (11, 1, 1)
    index = refresh.manifest.probe_index
    assert len(index) == 5 and sum(p.rows for p in index) == 12  # 4 ranges' hits, and the file probed again
    uris = [pq.read_table(tmp_path / "parts" / p.path).column("source_uri").to_pylist() for p in index]
    assert all(u == sorted(u) for u in uris)  # each part sorted by URI
    assert sorted(u for part in uris for u in part) == sorted(str(p) for p in inputs.iterdir())
    rerun = run(inputs, tmp_path / "parts", 3)
    assert not rerun.published and rerun.probe_cached == 12 and rerun.manifest.version == refresh.manifest.version


@pytest.mark.slow
def test_a_refresh_in_parts_reannotates_and_refilters_what_a_refresh_in_one_does(ray_local, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(9):
        (inputs / f"{i:02d}.jpg").write_bytes(jpeg_bytes(96, 72, seed=i))
    tuned = {"min_neighbors": 2, "max_side": 64}  # haar's options changed: its rows are re-annotated
    confidence = [{"name": "confidence", "backend": "confidence"}]  # a filter added: the rows are re-filtered

    def refreshes(output: Path, part_rows: int) -> list[tuple]:
        results = [
            run(inputs, output, part_rows),
            run(inputs, output, part_rows, haar=tuned),
            run(inputs, output, part_rows, haar=tuned, filters=confidence),
        ]
        rows = read_version(output).sort_by("image_id").select(["image_id", "source_uris", "regions", "stages"])
        return [(r.annotated, r.reannotated, r.refiltered, r.carried) for r in results] + [rows.to_pylist()]

    one, parts = refreshes(tmp_path / "one", 1000), refreshes(tmp_path / "parts", 3)
    assert parts == one
    assert one[:3] == [(9, 0, 0, 0), (9, 9, 0, 0), (0, 0, 9, 0)]
    assert all(dict(row["stages"]).keys() == {"haar", "confidence"} for row in one[3])
