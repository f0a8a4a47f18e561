"""A run whose listing is cut into several parts probes them as Ray tasks: it annotates what a run in one part
annotates, publishes its probe index in parts written by the workers, and a refresh reuses them
where files are unchanged; a rerun publishes nothing. A refresh in parts re-annotates and re-filters (its rows
to rerun kept where carry-over's batches ran) what a refresh in one part does, and a refresh of one input of two
keeps, skips and tombstones (each id partition's side tables written where it is) what one in one part does."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from engine.config.profile import parse_config
from engine.run import RunRequest, RunResult, run_pipeline
from engine.store.reader import read_shard, read_skipped, read_version, version_dataset
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


def run(inputs: Path | tuple[Path, ...], output: Path, part_rows: int, **changes) -> RunResult:
    listed = tuple(str(path) for path in (inputs if isinstance(inputs, tuple) else (inputs,)))
    request = RunRequest(listed, output, parse_config(profile(part_rows, **changes)), progress_bars=False)
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


SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "images"


def test_a_refresh_of_one_input_in_parts_keeps_skips_and_tombstones_what_one_part_does(ray_local, tmp_path) -> None:
    kept, listed = tmp_path / "kept", tmp_path / "listed"  # the refresh lists only the second input
    for folder in (kept, listed):
        folder.mkdir()
    for name in ("astronaut.jpg", "chelsea.jpg"):
        (kept / name).write_bytes((SAMPLES / name).read_bytes())
    Image.new("RGB", (10, 10), (200, 30, 30)).save(kept / "dot.png")  # below the min_side gate: skipped
    Image.new("RGB", (12, 12), (30, 200, 30)).save(listed / "tiny.png")  # skipped, then removed
    (listed / "coffee.jpg").write_bytes((SAMPLES / "coffee.jpg").read_bytes())
    for i in range(2):
        (listed / f"{i:02d}.jpg").write_bytes(jpeg_bytes(96, 72, seed=i))
    runs = {}
    for name, part_rows in (("one", 1000), ("parts", 2)):
        first = run((kept, listed), tmp_path / name, part_rows)
        runs[name] = (first, tmp_path / name)
    (listed / "01.jpg").unlink()  # gone from a listed input: tombstoned
    (listed / "tiny.png").unlink()  # its skipped row is not carried
    astronaut = Image.open(SAMPLES / "astronaut.jpg")
    astronaut.resize((384, 384), Image.LANCZOS).save(listed / "astronaut_web.jpg", quality=75)  # a kept image's copy

    def refresh(name: str) -> tuple:
        first, output = runs[name]
        second = run(listed, output, 1000 if name == "one" else 2)
        skipped = read_skipped(output).select(["source_uri", "rule", "duplicate_of"]).to_pylist()
        tombstones = [row for shard in second.manifest.tombstones for row in read_shard(output, shard).to_pylist()]
        counts = [(r.annotated, r.skipped, r.carried, r.kept_unlisted, r.tombstoned) for r in (first, second)]
        return counts, skipped, tombstones

    (one, one_skipped, one_tombstones), (parts, parts_skipped, parts_tombstones) = map(refresh, runs)
    assert one == parts == [(5, 2, 0, 0, 0), (0, 2, 4, 2, 1)]
    assert one_skipped == parts_skipped
    rows = {Path(row["source_uri"]).name: (row["rule"], row["duplicate_of"]) for row in parts_skipped}
    annotated = read_version(tmp_path / "one", columns=["image_id", "source_uri"]).to_pylist()
    kept_astronaut = next(row["image_id"] for row in annotated if row["source_uri"].endswith("astronaut.jpg"))
    assert rows == {"dot.png": ("min_side", None), "astronaut_web.jpg": ("near_duplicate", kept_astronaut)}
    assert one_tombstones == parts_tombstones and [Path(t["source_uri"]).name for t in parts_tombstones] == ["01.jpg"]
