"""Curation in a run: near-duplicates and gated images are skipped before any model runs, recorded in the
``skipped/`` table, and a refresh that adds a copy of an annotated image does not annotate it."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from engine.cli import main as cli
from engine.config.profile import parse_config
from engine.run import RunRequest, RunResult, run_pipeline
from engine.store.reader import read_shard, read_version
from filters.curation.selection import NEAR_DUPLICATE
from schemas.records import ImageMeasures
from tests.support.local_ray import local_ray

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "images"
PROFILE = {
    "specialists": [{"name": "haar", "backend": "haar", "resources": {"batch_size": 4}}],
    "ray": {"num_cpus": 2},
}


@pytest.fixture(scope="module")
def ray_local():
    with local_ray():
        yield


def run(inputs: Path, output: Path) -> RunResult:
    hour_ago = time.time() - 3600  # older than the probe cache's racy window: the rerun trusts the index
    for path in inputs.iterdir():
        if path.stat().st_mtime > hour_ago + 60:
            os.utime(path, (hour_ago, hour_ago))
    request = RunRequest((str(inputs),), output, parse_config(PROFILE), progress_bars=False)
    return run_pipeline(request, progress=lambda _: None)


def resized_copy(source: Path, target: Path, scale: float, quality: int) -> None:
    image = Image.open(source).convert("RGB")
    image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS).save(target, quality=quality)


@pytest.fixture(scope="module")
def curated(ray_local, tmp_path_factory) -> tuple[Path, Path, RunResult, RunResult]:
    """Version 1: astronaut, its smaller recompressed copy, chelsea and a 10 px image; version 2 adds a copy
    of astronaut larger than the original."""
    inputs, output = tmp_path_factory.mktemp("inputs"), tmp_path_factory.mktemp("out")
    shutil.copy(SAMPLES / "astronaut.jpg", inputs / "astronaut.jpg")
    shutil.copy(SAMPLES / "chelsea.jpg", inputs / "chelsea.jpg")
    resized_copy(SAMPLES / "astronaut.jpg", inputs / "astronaut_small.jpg", 0.5, 70)
    Image.fromarray(np.full((10, 40, 3), 200, np.uint8)).save(inputs / "strip.png")
    first = run(inputs, output)
    resized_copy(SAMPLES / "astronaut.jpg", inputs / "astronaut_large.jpg", 1.5, 85)
    second = run(inputs, output)
    return inputs, output, first, second


def skipped_rows(output: Path, result: RunResult) -> dict[str, dict]:
    rows = [row for shard in result.manifest.skipped for row in read_shard(output, shard).to_pylist()]
    return {Path(row["source_uri"]).name: row for row in rows}


def test_a_copy_and_a_tiny_image_are_skipped_before_annotation(curated) -> None:
    inputs, output, first, _ = curated
    assert (first.annotated, first.skipped, first.near_duplicate_groups, first.quarantined) == (2, 2, 1, 0)
    names = sorted(Path(uri).name for uri in read_version(output, 1, ["source_uri"]).column(0).to_pylist())
    assert names == ["astronaut.jpg", "chelsea.jpg"]
    skipped = skipped_rows(output, first)
    assert sorted(skipped) == ["astronaut_small.jpg", "strip.png"]
    copy, strip = skipped["astronaut_small.jpg"], skipped["strip.png"]
    astronaut_id = read_version(output, 1, ["image_id", "source_uri"]).to_pylist()
    astronaut_id = next(row["image_id"] for row in astronaut_id if row["source_uri"].endswith("astronaut.jpg"))
    assert copy["rule"] == NEAR_DUPLICATE and copy["duplicate_of"] == astronaut_id
    assert copy["value"] <= copy["threshold"] == 8.0 and "astronaut.jpg" in copy["detail"]
    assert (strip["rule"], strip["value"], strip["threshold"], strip["duplicate_of"]) == ("min_side", 10.0, 16.0, None)
    assert strip["source_uris"] == [str(inputs / "strip.png")]


def test_the_manifest_counts_every_input_once(curated) -> None:
    _, _, first, _ = curated
    counts = first.manifest.counts
    assert counts["images"] + counts["skipped"]["total"] + counts["quarantined"].get("total", 0) == first.files
    assert counts["skipped"] == {"total": 2, "near_duplicate": 1, "min_side": 1}
    assert first.manifest.extra["near_duplicate_groups"] == 1 and first.manifest.extra["skipped"] == 2
    assert any(path.startswith("skipped/") for path in first.manifest.files())


def test_measures_are_kept_in_the_probe_index_and_the_annotation_rows(curated) -> None:
    _, output, first, _ = curated
    (part,) = first.manifest.probe_index  # a small run writes its probe index in one part
    index = pq.read_table(output / part.path).to_pylist()
    by_name = {Path(row["source_uri"]).name: row for row in index}
    strip = ImageMeasures.from_dict(by_name["strip.png"]["measures"])
    assert (strip.width, strip.height, strip.aspect_ratio, strip.single_colour_fraction) == (40, 10, 4.0, 1.0)
    rows = read_version(output, 1, ["source_uri", "measures", "width", "height"]).to_pylist()
    for row in rows:
        measures = ImageMeasures.from_dict(row["measures"])
        assert (measures.width, measures.height) == (row["width"], row["height"])
        assert measures.phash == by_name[Path(row["source_uri"]).name]["measures"]["phash"]


def test_a_refresh_does_not_annotate_a_new_copy_of_an_annotated_image(curated) -> None:
    _, output, _, second = curated
    # astronaut_large.jpg has the most pixels, but astronaut.jpg was annotated already: it stays the representative;
    # the measures of the four files of version 1 come from its probe index.
    assert (second.annotated, second.carried, second.reannotated, second.tombstoned) == (0, 2, 0, 0)
    assert second.probe_cached == 4 and second.near_duplicate_groups == 1
    skipped = skipped_rows(output, second)
    assert sorted(skipped) == ["astronaut_large.jpg", "astronaut_small.jpg", "strip.png"]
    assert skipped["astronaut_large.jpg"]["duplicate_of"] == skipped["astronaut_small.jpg"]["duplicate_of"]
    assert read_version(output, 2).sort_by("image_id").equals(read_version(output, 1).sort_by("image_id"))


def coco_images_and_boxes(folder: Path) -> dict[str, tuple[tuple[int, int], list[list[float]]]]:
    """fld_image_id -> ((width, height), sorted boxes) over both splits of a COCO export."""
    found: dict[str, tuple[tuple[int, int], list[list[float]]]] = {}
    for split in ("train", "val"):
        coco = json.loads((folder / f"instances_{split}.json").read_text())
        boxes = {image["id"]: [] for image in coco["images"]}
        for annotation in coco["annotations"]:
            boxes[annotation["image_id"]].append(annotation["bbox"])
        for image in coco["images"]:
            found[image["fld_image_id"]] = ((image["width"], image["height"]), sorted(boxes[image["id"]]))
    return found


def test_coco_export_includes_near_duplicates_with_scaled_boxes_only_when_asked(curated, tmp_path) -> None:
    _, output, _, second = curated
    assert cli(["export", str(output), "--format", "coco", "--to", str(tmp_path / "plain")]) == 0
    assert len(coco_images_and_boxes(tmp_path / "plain")) == 2
    argv = ["export", str(output), "--format", "coco", "--to", str(tmp_path / "all"), "--include-near-duplicates"]
    assert cli(argv) == 0
    images = coco_images_and_boxes(tmp_path / "all")
    skipped = skipped_rows(output, second)
    copies = {name: skipped[name] for name in ("astronaut_small.jpg", "astronaut_large.jpg")}
    assert set(images) == set(coco_images_and_boxes(tmp_path / "plain")) | {row["image_id"] for row in copies.values()}
    (width, height), boxes = images[copies["astronaut_small.jpg"]["duplicate_of"]]
    assert boxes, "the haar cascades find the astronaut's face"
    for row in copies.values():
        (copy_width, copy_height), copy_boxes = images[row["image_id"]]
        assert (copy_width, copy_height) == (row["measures"]["width"], row["measures"]["height"])
        sx, sy = copy_width / width, copy_height / height
        expected = sorted([x * sx, y * sy, w * sx, h * sy] for x, y, w, h in boxes)
        assert copy_boxes == [pytest.approx(box, abs=0.01) for box in expected]
    assert "--include-near-duplicates: the hf export" in _cli_error(
        ["export", str(output), "--format", "hf", "--to", str(tmp_path / "hf"), "--include-near-duplicates"]
    )


def _cli_error(argv: list[str]) -> str:
    import contextlib
    import io

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert cli(argv) == 2
    return stderr.getvalue()


def test_diff_shows_the_newly_skipped_copy_and_the_groups(curated, capsys) -> None:
    _, output, _, second = curated
    assert cli(["diff", str(output), "--from", "1", "--to", "2"]) == 0
    printed = capsys.readouterr().out
    large = skipped_rows(output, second)["astronaut_large.jpg"]
    assert "  skipped             1" in printed and "not skipped         0" in printed
    assert f"{large['image_id'][:12]}  {large['source_uri']}  near_duplicate" in printed
    assert f"copy of {large['duplicate_of'][:12]}" in printed
    assert "near-duplicate groups 1 -> 1" in printed
    assert "skipped.near_duplicate" in printed and "skipped.total" in printed


def test_audit_and_inspect_report_skips_and_duplicate_groups(curated, capsys, tmp_path) -> None:
    inputs, output, _, _ = curated
    assert cli(["audit", str(output), "--html", str(tmp_path / "report.html")]) == 0
    printed = capsys.readouterr().out
    assert "skipped by curation: min_side=1, near_duplicate=2; near-duplicate groups: 1" in printed
    copies = f"{inputs / 'astronaut_large.jpg'}, {inputs / 'astronaut_small.jpg'}"
    assert f"  {inputs / 'astronaut.jpg'} (2 copies): {copies}" in printed
    html = (tmp_path / "report.html").read_text()
    assert "<h2>Skipped by curation</h2>" in html and "astronaut_small.jpg" in html
    assert cli(["inspect", str(output), "--no-stats"]) == 0
    printed = capsys.readouterr().out
    assert "skipped             3   (min_side=1, near_duplicate=2)" in printed
    assert "near-duplicate groups 1" in printed


def test_a_copy_in_a_new_input_of_an_image_kept_from_an_earlier_run_is_not_annotated(ray_local, tmp_path) -> None:
    first_inputs, new_inputs, output = tmp_path / "first", tmp_path / "new", tmp_path / "out"
    first_inputs.mkdir()
    new_inputs.mkdir()
    shutil.copy(SAMPLES / "astronaut.jpg", first_inputs / "astronaut.jpg")
    shutil.copy(SAMPLES / "chelsea.jpg", first_inputs / "chelsea.jpg")
    resized_copy(SAMPLES / "astronaut.jpg", first_inputs / "astronaut_small.jpg", 0.5, 70)
    first = run(first_inputs, output)
    resized_copy(SAMPLES / "astronaut.jpg", new_inputs / "astronaut_web.jpg", 0.75, 75)
    shutil.copy(SAMPLES / "coffee.jpg", new_inputs / "coffee.jpg")
    # Only the new folder: the two images of version 1 are kept as they were, and their annotation rows'
    # measures stand for them in the grouping; the copy version 1 skipped stays in the skipped table.
    second = run(new_inputs, output)
    assert (first.annotated, second.annotated, second.kept_unlisted, second.skipped) == (2, 1, 2, 2)
    assert second.manifest.counts["skipped"] == {"total": 2, "near_duplicate": 2}
    skipped = skipped_rows(output, second)
    assert skipped["astronaut_small.jpg"] == skipped_rows(output, first)["astronaut_small.jpg"]
    row = skipped["astronaut_web.jpg"]
    astronaut = next(
        r for r in read_version(output, 1, ["image_id", "source_uri"]).to_pylist() if "astronaut" in r["source_uri"]
    )
    assert (Path(row["source_uri"]).name, row["rule"], row["duplicate_of"]) == (
        "astronaut_web.jpg",
        NEAR_DUPLICATE,
        astronaut["image_id"],
    )
    names = sorted(Path(uri).name for uri in read_version(output, 2, ["source_uri"]).column(0).to_pylist())
    assert names == ["astronaut.jpg", "chelsea.jpg", "coffee.jpg"]
