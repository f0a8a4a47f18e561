"""COCO export: every instance has a segmentation (OCR quads as polygons), and a train/val split by image id."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from engine.cli import main as cli
from engine.exports.coco import coco_annotation, export_coco
from engine.exports.split import split_of
from engine.store.reader import iter_records
from schemas.records import Provenance, Region
from tests.support.audit_dataset import build_demo_dataset

DETR = Provenance("detr", "tiny-detr", 0)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo_dataset(tmp_path_factory.mktemp("demo"))


def quiet(function, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args)


def segm_self_evaluation(path: Path) -> float:
    """COCOeval ``segm`` of every annotation of ``path`` against itself (no annotation filtered out)."""
    truth = quiet(COCO, str(path))
    detections = quiet(truth.loadRes, [{**a, "score": 1.0} for a in truth.dataset["annotations"]])
    evaluation = COCOeval(truth, detections, "segm")
    for step in (evaluation.evaluate, evaluation.accumulate, evaluation.summarize):
        quiet(step)
    return float(evaluation.stats[0])


def test_ocr_quads_are_written_as_polygons_and_keep_their_bbox(demo, tmp_path) -> None:
    export_coco(iter_records(demo.root), tmp_path / "coco", ("ocr_line", "ocr_word"), val_fraction=0.0)
    annotations = json.loads((tmp_path / "coco" / "instances_train.json").read_text())["annotations"]
    line = next(a for a in annotations if a["fld_kind"] == "ocr_line")
    assert line["segmentation"] == [[10.0, 10.0, 70.0, 10.0, 70.0, 30.0, 10.0, 30.0]]
    assert line["bbox"] == [10.0, 10.0, 60.0, 20.0] and line["area"] == 60 * 20
    assert line["fld_segmentation"] == "quad" and line["fld_text"] == "OPEN <script>"
    word = next(a for a in annotations if a["fld_kind"] == "ocr_word")
    assert word["segmentation"] == [[10.0, 10.0, 40.0, 10.0, 40.0, 30.0, 10.0, 30.0]]


def test_segm_evaluation_of_ocr_lines_alone_runs_and_scores_ap_one(demo, tmp_path) -> None:
    export_coco(iter_records(demo.root), tmp_path / "coco", ("ocr_line",), val_fraction=0.0)
    assert segm_self_evaluation(tmp_path / "coco" / "instances_train.json") == pytest.approx(1.0)


def test_box_only_instances_get_their_box_as_a_polygon_so_segm_evaluation_runs(demo, tmp_path) -> None:
    export_coco(iter_records(demo.root), tmp_path / "coco", ("object", "phrase"), val_fraction=0.0)
    annotations = json.loads((tmp_path / "coco" / "instances_train.json").read_text())["annotations"]
    assert all("segmentation" in a for a in annotations)
    kinds = sorted((a["fld_kind"], a["fld_segmentation"]) for a in annotations)
    assert kinds == [("object", "box")] * 4 + [("object", "mask"), ("phrase", "box"), ("phrase", "mask")]
    person = next(a for a in annotations if a["fld_kind"] == "object" and a["fld_text"] == "person")
    assert person["segmentation"] == [[60.0, 8.0, 84.0, 8.0, 84.0, 60.0, 60.0, 60.0]] and person["area"] == 24 * 52
    assert segm_self_evaluation(tmp_path / "coco" / "instances_train.json") == pytest.approx(1.0)


def test_images_are_split_by_image_id_into_train_and_val_files(demo, tmp_path) -> None:
    report = export_coco(iter_records(demo.root), tmp_path / "coco", ("object", "ocr_line"), val_fraction=0.5)
    expected = {"train": set(), "val": set()}
    for record in demo.records:
        expected[split_of(record.image_id, 0.5)].add(record.image_id)
    assert expected["train"] and expected["val"]  # the demo's three ids fall on both sides at 0.5
    files = {}
    for split in ("train", "val"):
        instances = json.loads((tmp_path / "coco" / f"instances_{split}.json").read_text())
        captions = json.loads((tmp_path / "coco" / f"captions_{split}.json").read_text())
        assert {i["fld_image_id"] for i in instances["images"]} == expected[split]
        assert {i["fld_image_id"] for i in captions["images"]} == expected[split]
        image_ids = {i["id"] for i in instances["images"]}
        assert {a["image_id"] for a in instances["annotations"] + captions["annotations"]} <= image_ids
        files[split] = instances
    assert files["train"]["categories"] == files["val"]["categories"]
    annotation_ids = [a["id"] for split in files.values() for a in split["annotations"]]
    assert len(annotation_ids) == len(set(annotation_ids)) == 6
    assert sum(report.files[f"instances_{s}.json"] for s in ("train", "val")) == 6
    assert not (tmp_path / "coco" / "instances.json").exists() and not (tmp_path / "coco" / ".parts").exists()


def test_the_split_is_the_same_on_every_export(demo, tmp_path) -> None:
    for name in ("a", "b"):
        export_coco(iter_records(demo.root), tmp_path / name, ("object",), val_fraction=0.5)
    for file in ("instances_train.json", "instances_val.json", "captions_train.json", "captions_val.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_export_command_splits_coco_by_val_fraction(demo, tmp_path, capsys) -> None:
    destination = tmp_path / "coco"
    args = ["export", str(demo.root), "--format", "coco", "--to", str(destination), "--val-fraction", "0"]
    assert cli(args) == 0
    out = capsys.readouterr().out
    assert "file instances_train.json" in out and "file instances_val.json" in out
    assert len(json.loads((destination / "instances_train.json").read_text())["images"]) == 3
    assert json.loads((destination / "instances_val.json").read_text())["images"] == []


def test_a_polygon_region_keeps_its_polygon_with_the_area_coco_rasterises() -> None:
    region = Region("object", (0, 0, 10, 10), "roof", DETR, polygon=(0, 0, 10, 0, 0, 10))
    entry = coco_annotation(region, 1, 1, 1, (20, 20))
    assert entry["segmentation"] == [[0.0, 0.0, 10.0, 0.0, 0.0, 10.0]] and entry["fld_segmentation"] == "polygon"
    assert entry["bbox"] == [0.0, 0.0, 10.0, 10.0] and entry["area"] == 45.0  # the 50 px triangle, rasterised


def test_a_quad_of_two_points_falls_back_to_the_box_as_pycocotools_would_misread_it() -> None:
    region = Region("ocr_line", (2, 2, 8, 6), "ab", DETR, quad=(2, 2, 8, 6))
    entry = coco_annotation(region, 1, 1, 1, (20, 20))
    assert entry["fld_segmentation"] == "box" and entry["segmentation"] == [[2.0, 2.0, 8.0, 2.0, 8.0, 6.0, 2.0, 6.0]]
