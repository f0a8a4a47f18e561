"""``fld-engine run --annotations``: a COCO file and a Parquet captions file written here for a few images,
imported through local Ray, judged by the filters, kept by a refresh and re-imported when the file changes."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from engine.cli import main as cli
from engine.store.manifest import require_manifest
from engine.store.reader import read_version
from schemas.records import ImageRecord
from tests.support.local_ray import local_ray

pytestmark = pytest.mark.slow

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "images"
PROFILE = {
    "filters": [{"name": "confidence", "backend": "confidence"}],
    "writer": {"rows_per_shard": 4, "row_group_rows": 2},
    "ray": {"num_cpus": 2},
}


def coco(bus_label: str = "bus") -> dict:
    """bus.jpg (810x1080) under images/street/, chelsea.jpg at the top; one entry that names no image."""
    return {
        "images": [
            {"id": 1, "file_name": "street/bus.jpg", "width": 810, "height": 1080},
            {"id": 2, "file_name": "chelsea.jpg", "width": 451, "height": 300},
            {"id": 3, "file_name": "street/missing.jpg", "width": 10, "height": 10},
        ],
        "categories": [{"id": 1, "name": bus_label}, {"id": 2, "name": "person"}, {"id": 3, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [17, 230, 784, 520],
             "segmentation": [[17, 230, 801, 230, 801, 750, 17, 750]]},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [48, 399, 196, 503], "score": 0.95},
            {"id": 3, "image_id": 1, "category_id": 2, "bbox": [700, 400, 80, 300], "score": 0.05},
            {"id": 4, "image_id": 1, "caption": "a blue bus parked on a city street"},
            {"id": 5, "image_id": 2, "category_id": 3, "bbox": [130, 20, 250, 270]},
            {"id": 6, "image_id": 3, "caption": "nothing here"},
        ],
    }  # fmt: skip


@pytest.fixture(scope="module")
def ray_local():
    with local_ray():
        yield


@pytest.fixture(scope="module")
def corpus(ray_local, tmp_path_factory):
    base = tmp_path_factory.mktemp("imports")
    images = base / "images"
    (images / "street").mkdir(parents=True)
    shutil.copy(SAMPLES / "bus.jpg", images / "street" / "bus.jpg")
    for name in ("chelsea.jpg", "coffee.jpg"):
        shutil.copy(SAMPLES / name, images / name)
    (base / "coco.json").write_text(json.dumps(coco()))
    captions = pa.table({"path": ["coffee.jpg", "coffee.jpg"], "caption": ["a cup of coffee", "coffee on a saucer"]})
    pq.write_table(captions, base / "captions.parquet")
    (base / "profile.yaml").write_text(yaml.safe_dump(PROFILE))
    an_hour_ago = time.time_ns() - 3600 * 10**9  # the probe cache trusts no mtime of the last seconds
    for path in images.rglob("*"):
        os.utime(path, ns=(an_hour_ago, an_hour_ago))
    return base


def run(base: Path, capsys) -> str:
    argv = [
        "run",
        "--input",
        str(base / "images"),
        "--output",
        str(base / "out"),
        "--config",
        str(base / "profile.yaml"),
    ]
    # --always-publish: an unchanged refresh publishes a version anyway, so what it carried over can be read;
    # not --quiet, which prints no summary.
    argv += ["--annotations", str(base / "coco.json"), str(base / "captions.parquet"), "--always-publish"]
    assert cli(argv) == 0
    return capsys.readouterr().out


def by_name(base: Path) -> dict[str, ImageRecord]:
    return {Path(row["source_uri"]).name: ImageRecord.from_row(row) for row in read_version(base / "out").to_pylist()}


@pytest.fixture(scope="module")
def first(corpus):
    argv = ["run", "--input", str(corpus / "images"), "--output", str(corpus / "out")]
    argv += ["--config", str(corpus / "profile.yaml"), "--quiet"]
    argv += ["--annotations", str(corpus / "coco.json"), str(corpus / "captions.parquet")]
    assert cli(argv) == 0
    return by_name(corpus)


def test_coco_boxes_masks_and_captions_are_imported_with_their_source(first) -> None:
    bus = first["bus.jpg"]
    imported = [(r.text, r.score) for r in bus.regions if r.provenance.source == "import:coco"]
    assert imported == [("bus", None), ("person", pytest.approx(0.95))]
    box = next(r for r in bus.regions if r.text == "bus")
    assert box.bbox == pytest.approx((17, 230, 801, 750)) and box.mask is not None and box.polygon is not None
    assert [(t.text, t.provenance.source) for t in bus.texts] == [("a blue bus parked on a city street", "import:coco")]
    assert [r.text for r in first["chelsea.jpg"].regions] == ["cat"]


def test_imported_boxes_go_through_the_filters(first) -> None:
    (drop,) = first["bus.jpg"].dropped
    assert (drop.stage, drop.rule, drop.value) == ("confidence", "min_score", pytest.approx(0.05))
    assert drop.restore().provenance.source == "import:coco"


def test_a_parquet_captions_file_is_imported_by_file_name(first) -> None:
    texts = [(t.text, t.provenance.source) for t in first["coffee.jpg"].texts]
    assert texts == [("a cup of coffee", "import:captions"), ("coffee on a saucer", "import:captions")]


def test_the_manifest_reports_what_each_file_matched(first, corpus) -> None:
    imports = require_manifest(corpus / "out").extra["imports"]
    assert imports["import:coco"] == {
        "entries": 3,
        "matched_entries": 2,
        "matched_images": 2,
        "unmatched": 1,
        "unmatched_examples": ["street/missing.jpg"],
    }
    assert imports["import:captions"]["matched_images"] == 1 and imports["import:captions"]["unmatched"] == 0


def test_a_refresh_keeps_the_imports_and_a_changed_file_reimports(first, corpus, capsys) -> None:
    out = run(corpus, capsys)
    assert "0 images annotated, 3 carried over" in out
    assert "imported import:coco: 2 of 3 entries matched 2 images; 1 unmatched (street/missing.jpg)" in out
    assert by_name(corpus)["bus.jpg"].to_row() == first["bus.jpg"].to_row()
    (corpus / "coco.json").write_text(json.dumps(coco(bus_label="coach")))
    run(corpus, capsys)
    manifest = require_manifest(corpus / "out")
    assert manifest.extra["reannotated"] + manifest.extra["refiltered"] == 3
    records = by_name(corpus)
    assert sorted(r.text for r in records["bus.jpg"].regions) == ["coach", "person"]
    assert [r.text for r in records["chelsea.jpg"].regions] == ["cat"]
    assert [t.text for t in records["coffee.jpg"].texts] == ["a cup of coffee", "coffee on a saucer"]
