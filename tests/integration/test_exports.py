"""Exports round-trip: COCO through pycocotools (COCOeval of the export against itself is AP 1.0),
YOLO through an ultralytics training epoch, HF through ``datasets``, images as the engine decoded them."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from engine.cli import main as cli
from engine.exports.coco import export_coco
from engine.exports.hf import export_hf
from engine.exports.images import write_image
from engine.exports.split import split_of
from engine.exports.yolo import export_yolo
from engine.store.reader import iter_records
from schemas.masks import decode_mask
from schemas.records import ImageRecord
from tests.support.audit_dataset import build_demo_dataset


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo_dataset(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def coco_export(demo, tmp_path_factory) -> Path:
    destination = tmp_path_factory.mktemp("coco") / "out"
    report = export_coco(iter_records(demo.root), destination, ("object", "ocr_line"), val_fraction=0.0)
    assert report.images == 3 and report.annotations["instances object"] == 5
    return destination


def quiet(function, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args)


def self_evaluation(path: Path, kind: str, keep=lambda a: True) -> float:
    truth = quiet(COCO, str(path))
    truth.dataset["annotations"] = [a for a in truth.dataset["annotations"] if keep(a)]
    quiet(truth.createIndex)
    detections = quiet(truth.loadRes, [{**a, "score": 1.0} for a in truth.dataset["annotations"]])
    evaluation = COCOeval(truth, detections, kind)
    for step in (evaluation.evaluate, evaluation.accumulate, evaluation.summarize):
        quiet(step)
    return float(evaluation.stats[0])


def test_coco_export_loads_in_pycocotools_with_categories_and_provenance(coco_export) -> None:
    coco = quiet(COCO, str(coco_export / "instances_train.json"))
    names = {c["name"] for c in coco.loadCats(coco.getCatIds())}
    assert names == {"car", "person", "sign", "ocr_line"}
    assert len(coco.getImgIds()) == 3 and len(coco.getAnnIds()) == 6
    cars = coco.loadAnns(coco.getAnnIds(catIds=coco.getCatIds(catNms=["car"])))
    assert sorted(a["fld_source"] for a in cars) == ["detr", "florence2", "haar"]
    assert {a["fld_round"] for a in cars} == {0, 1}
    ocr = coco.loadAnns(coco.getAnnIds(catIds=coco.getCatIds(catNms=["ocr_line"])))[0]
    assert ocr["fld_text"] == "OPEN <script>" and ocr["bbox"] == [10.0, 10.0, 60.0, 20.0]
    for image in coco.loadImgs(coco.getImgIds()):
        assert Image.open(coco_export / image["file_name"]).size == (image["width"], image["height"])


def test_coco_export_evaluated_against_itself_scores_ap_one(coco_export) -> None:
    path = coco_export / "instances_train.json"
    assert self_evaluation(path, "bbox") == pytest.approx(1.0)
    assert self_evaluation(path, "segm", keep=lambda a: "segmentation" in a) == pytest.approx(1.0)


def test_coco_masks_are_rle_that_decode_to_the_original_mask(coco_export, demo) -> None:
    coco = quiet(COCO, str(coco_export / "instances_train.json"))
    masked = [a for a in coco.dataset["annotations"] if isinstance(a["segmentation"], dict)]  # RLE
    assert len(masked) == 1 and isinstance(masked[0]["segmentation"]["counts"], str)
    original = next(r for r in demo.records[0].regions if r.mask is not None)
    assert np.array_equal(coco.annToMask(masked[0]).astype(bool), decode_mask(original.mask))
    assert masked[0]["area"] == 40 * 30


def test_coco_captions_json_holds_every_text_with_its_granularity(coco_export) -> None:
    captions = quiet(COCO, str(coco_export / "captions_train.json"))
    texts = {(a["fld_granularity"], a["caption"]) for a in captions.dataset["annotations"]}
    assert ("brief", "A sign that says OPEN & <close>.") in texts and len(texts) == 4


def test_yolo_labels_are_normalised_centre_boxes(demo, tmp_path) -> None:
    report = export_yolo(iter_records(demo.root), tmp_path / "yolo")
    data = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())
    assert data["names"] == {0: "car", 1: "person", 2: "sign"} and report.annotations["boxes object"] == 5
    street = demo.records[0]
    label = tmp_path / "yolo" / "labels" / split_of(street.image_id) / f"{street.image_id[:16]}.txt"
    first = label.read_text().splitlines()[0].split()
    # car (8, 20, 48, 50) in a 96x64 image
    assert first == ["0", f"{28 / 96:.6f}", f"{35 / 64:.6f}", f"{40 / 96:.6f}", f"{30 / 64:.6f}"]


def test_yolo_export_trains_one_epoch_of_a_tiny_yolo(demo, tmp_path) -> None:
    from ultralytics import YOLO

    export_yolo(iter_records(demo.root), tmp_path / "yolo")
    model = YOLO("yolov8n.yaml")
    model.train(
        data=str(tmp_path / "yolo" / "data.yaml"),
        epochs=1,
        imgsz=64,
        batch=2,
        workers=0,
        device="cpu",
        plots=False,
        amp=False,
        verbose=False,
        project=str(tmp_path / "runs"),
        name="one_epoch",
    )
    dataset = model.trainer.train_loader.dataset
    assert len(dataset) == 3 and sum(len(label["cls"]) for label in dataset.labels) == 5
    assert model.trainer.epoch == 0 and (tmp_path / "runs" / "one_epoch" / "weights" / "last.pt").is_file()


def test_hf_export_loads_with_datasets_and_decodes_images(demo, tmp_path) -> None:
    import datasets

    report = export_hf(demo.root, tmp_path / "hf", val_fraction=0.0)
    assert report.images == 3 and report.files == {"data/train-00000.parquet": 3}
    loaded = datasets.load_dataset("parquet", data_dir=str(tmp_path / "hf"), cache_dir=str(tmp_path / "cache"))
    rows = {row["image_id"]: row for row in loaded["train"]}
    street = rows[demo.records[0].image_id]
    assert street["image"].size == (96, 64)
    assert [r["text"] for r in street["regions"]][:2] == ["car", "car"]
    assert street["phrases"][0]["phrase"] == "A red car"
    assert street["regions"][0]["provenance"] == {"source": "haar", "model": "opencv-haar-frontalface", "round": 0}


def test_split_is_deterministic_and_near_the_fraction() -> None:
    ids = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(2000)]
    splits = [split_of(i, 0.1) for i in ids]
    assert splits == [split_of(i, 0.1) for i in ids]
    assert 150 < splits.count("val") < 250
    assert all(split_of(i, 0.0) == "train" for i in ids[:50])


def test_exif_rotated_images_are_written_as_decoded(tmp_path) -> None:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise: 30x50 stored, 50x30 shown... as decoded: 30 wide
    Image.fromarray(np.zeros((30, 50, 3), dtype=np.uint8)).save(buffer, "JPEG", exif=exif.tobytes())
    data = buffer.getvalue()
    record = ImageRecord(hashlib.sha256(data).hexdigest(), "x.jpg", width=30, height=50, format="jpeg")
    name = write_image(record, data, tmp_path)
    assert name.endswith(".png") and Image.open(tmp_path / name).size == (30, 50)


def test_export_command_prints_counts_and_refuses_a_used_destination(demo, tmp_path, capsys) -> None:
    assert cli(["export", str(demo.root), "--format", "coco", "--to", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "coco export" in out and "instances object" in out and "records/s" in out
    split_files = [json.loads((tmp_path / "c" / f"instances_{s}.json").read_text()) for s in ("train", "val")]
    assert sum(len(data["images"]) for data in split_files) == 3
    assert cli(["export", str(demo.root), "--format", "coco", "--to", str(tmp_path / "c")]) == 2
    assert "must be a new or empty folder" in capsys.readouterr().err
    assert cli(["export", str(demo.root), "--format", "yolo", "--tasks", "cars", "--to", str(tmp_path / "y")]) == 2
    assert "takes region kinds" in capsys.readouterr().err


def test_missing_source_images_are_skipped_and_counted(demo, tmp_path) -> None:
    moved = ImageRecord.from_row(demo.records[1].to_row())
    moved.source_uris = [str(tmp_path / "gone.png")]
    report = export_coco([moved], tmp_path / "coco")
    assert report.images == 0 and report.skipped == {"source missing or changed since annotation": 1}
    assert "skipped 1 images: source missing or changed since annotation" in report.format_lines()


def test_hf_export_splits_by_image_id_into_train_and_validation(demo, tmp_path, capsys) -> None:
    import datasets

    assert cli(["export", str(demo.root), "--format", "hf", "--to", str(tmp_path / "hf"), "--val-fraction", "0.5"]) == 0
    assert "hf export" in capsys.readouterr().out
    loaded = datasets.load_dataset("parquet", data_dir=str(tmp_path / "hf"), cache_dir=str(tmp_path / "cache"))
    expected = {"train": set(), "validation": set()}
    for record in demo.records:
        expected["train" if split_of(record.image_id, 0.5) == "train" else "validation"].add(record.image_id)
    assert {name: set(loaded[name]["image_id"]) for name in loaded} == {k: v for k, v in expected.items() if v}


def test_coco_phrase_task_exports_grounded_regions_with_their_masks(demo, tmp_path) -> None:
    report = export_coco(iter_records(demo.root), tmp_path / "coco", ("phrase",), val_fraction=0.0)
    assert report.annotations == {"instances phrase": 2, "captions brief": 3, "captions detailed": 1}
    coco = quiet(COCO, str(tmp_path / "coco" / "instances_train.json"))
    assert {c["name"] for c in coco.dataset["categories"]} == {"a red car", "a person"}
    car = coco.loadAnns(coco.getAnnIds(catIds=coco.getCatIds(catNms=["a red car"])))[0]
    assert car["fld_kind"] == "phrase" and car["fld_source"] == "grounder" and car["area"] == 40 * 30
    assert car["fld_text_id"] == demo.records[0].texts[0].id
    assert self_evaluation(
        tmp_path / "coco" / "instances_train.json", "segm", keep=lambda a: "segmentation" in a
    ) == pytest.approx(1.0)
