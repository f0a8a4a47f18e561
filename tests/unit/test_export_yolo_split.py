"""YOLO split: val holds labels of every class with two or more labelled images, and no label-less
val image unless train has label-less images too; deterministic and close to the val fraction."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from engine.exports.class_split import ClassCoverageSplit
from engine.exports.split import split_of
from engine.exports.yolo import export_yolo
from schemas.records import ImageRecord, Provenance, Region

DETR = Provenance("detr", "tiny-detr", 0)


def ids(count: int, salt: str = "") -> list[str]:
    return [hashlib.sha256(f"{salt}{i}".encode()).hexdigest() for i in range(count)]


def final_splits(images: list[tuple[str, frozenset[int]]], val_fraction: float) -> dict[str, str]:
    """Feed ``(image_id, classes)`` to a split and return where each image ends up."""
    splitter = ClassCoverageSplit(val_fraction)
    placed = {image_id: splitter.add(image_id, image_id, classes) for image_id, classes in images}
    placed.update(splitter.moves())
    return placed


def coverage(images: list[tuple[str, frozenset[int]]], placed: dict[str, str]) -> dict[int, Counter[str]]:
    per_class: dict[int, Counter[str]] = {}
    for image_id, classes in images:
        for class_id in classes:
            per_class.setdefault(class_id, Counter())[placed[image_id]] += 1
    return per_class


def rare_classes_dataset() -> list[tuple[str, frozenset[int]]]:
    """600 images: 5 common classes, 30 classes with 2-3 images each, 2 classes with one image, 60 unlabelled."""
    rng = random.Random(7)
    image_ids = ids(600)
    images = [(i, frozenset({rng.randrange(5)})) for i in image_ids[:475]]
    rare = [(class_id, 2 + class_id % 2) for class_id in range(5, 35)] + [(35, 1), (36, 1)]
    position = 475
    for class_id, count in rare:
        for _ in range(count):
            images.append((image_ids[position], frozenset({class_id, rng.randrange(5)})))
            position += 1
    images += [(i, frozenset()) for i in image_ids[position:]]
    return images


def test_val_holds_every_class_with_two_or_more_labelled_images() -> None:
    images = rare_classes_dataset()
    hashed = coverage(images, {i: split_of(i, 0.1) for i, _ in images})
    assert sum(1 for c in hashed.values() if sum(c.values()) >= 2 and not c["val"]) > 20  # what a plain hash does
    per_class = coverage(images, final_splits(images, 0.1))
    assert all(counts["val"] >= 1 for counts in per_class.values() if sum(counts.values()) >= 2)
    assert all(counts["train"] >= 1 for counts in per_class.values())


def test_the_val_share_stays_close_to_the_fraction() -> None:
    images = rare_classes_dataset()
    placed = final_splits(images, 0.1)
    hashed_val = sum(split_of(i, 0.1) == "val" for i, _ in images)
    val = sum(split == "val" for split in placed.values())
    classes_needing_val = 30
    assert abs(val - hashed_val) <= classes_needing_val and 0.05 < val / len(images) < 0.16


def test_the_split_does_not_depend_on_the_order_images_arrive_in() -> None:
    images = rare_classes_dataset()
    shuffled = images[:]
    random.Random(3).shuffle(shuffled)
    assert final_splits(images, 0.1) == final_splits(shuffled, 0.1)


def test_label_less_images_stay_out_of_val_when_train_has_none() -> None:
    labelled = [(i, frozenset({0})) for i in ids(50, "labelled")]
    unlabelled_val = [i for i in ids(400, "bare") if split_of(i, 0.1) == "val"][:6]
    placed = final_splits(labelled + [(i, frozenset()) for i in unlabelled_val], 0.1)
    assert [placed[i] for i in unlabelled_val] == ["train"] * 6


def test_label_less_images_may_be_in_val_when_train_has_some_too() -> None:
    bare = ids(400, "bare")
    chosen = [i for i in bare if split_of(i, 0.1) == "val"][:3] + [i for i in bare if split_of(i, 0.1) == "train"][:3]
    labelled = [(i, frozenset({0})) for i in ids(50, "labelled")]
    placed = final_splits(labelled + [(i, frozenset()) for i in chosen], 0.1)
    assert [placed[i] for i in chosen] == ["val"] * 3 + ["train"] * 3


def test_a_class_whose_images_all_hash_to_val_keeps_one_in_train() -> None:
    both_val = [i for i in ids(400, "v") if split_of(i, 0.1) == "val"][:2]
    images = [(i, frozenset({0})) for i in ids(30, "common")] + [(i, frozenset({1})) for i in both_val]
    per_class = coverage(images, final_splits(images, 0.1))
    assert per_class[1] == Counter({"train": 1, "val": 1})


def test_no_fraction_means_no_val_images() -> None:
    images = rare_classes_dataset()
    assert set(final_splits(images, 0.0).values()) == {"train"}


def _image(folder: Path, index: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.full((32, 48, 3), index * 3 % 256, dtype=np.uint8)
    pixels[0, 0] = [index % 256, index // 256, 7]  # unique bytes per image
    path = folder / f"img_{index:03d}.png"
    Image.fromarray(pixels).save(path)
    return path


def _record(folder: Path, index: int, label: str | None) -> ImageRecord:
    path = _image(folder, index)
    record = ImageRecord(hashlib.sha256(path.read_bytes()).hexdigest(), str(path), width=48, height=32, format="png")
    if label is not None:
        record.regions = [Region("object", (4, 4, 20, 20), label, DETR, score=0.9)]
    return record


def test_yolo_export_moves_label_files_with_their_images_so_val_covers_every_class(tmp_path) -> None:
    labels = ["car"] * 30 + ["dog", "dog", "kite", "kite", "kite", "owl"]
    records = [_record(tmp_path / "images", index, label) for index, label in enumerate(labels)]
    bare = (_record(tmp_path / "images", index, None) for index in range(100, 400))
    records += [r for r in bare if split_of(r.image_id, 0.1) == "val"][:3]  # all label-less images hash to val
    report = export_yolo(records, tmp_path / "yolo", val_fraction=0.1)
    data = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())
    assert data["val"] == "images/val"
    classes: dict[str, set[str]] = {}
    empty: dict[str, int] = {}
    for split in ("train", "val"):
        images = sorted(p.stem for p in (tmp_path / "yolo" / "images" / split).iterdir())
        label_files = sorted((tmp_path / "yolo" / "labels" / split).iterdir())
        assert images == [p.stem for p in label_files]
        lines = [line for p in label_files for line in p.read_text().splitlines()]
        classes[split] = {data["names"][int(line.split()[0])] for line in lines}
        empty[split] = sum(1 for p in label_files if not p.read_text())
    assert classes == {"train": {"car", "dog", "kite", "owl"}, "val": {"car", "dog", "kite"}}
    assert empty == {"train": 3, "val": 0}
    assert report.files["images/train"] + report.files["images/val"] == 39
    assert report.annotations["images moved between splits"] >= 3
