"""HF export: a dataset card (README.md) with features, counts, provenance, profile and version that
``datasets`` reads."""

from __future__ import annotations

import dataclasses

import datasets
import pyarrow as pa
import pytest
from huggingface_hub import DatasetCard

from engine.exports.hf import export_hf
from engine.exports.hf_card import CardCounts, card_body
from engine.exports.split import split_of
from engine.store.manifest import require_manifest
from engine.store.reader import iter_batches
from tests.support.audit_dataset import build_demo_dataset


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo_dataset(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def exported(demo, tmp_path_factory):
    destination = tmp_path_factory.mktemp("hf") / "out"
    export_hf(demo.root, destination, val_fraction=0.5)
    return destination


def test_datasets_loads_the_folder_with_the_splits_and_features_the_card_declares(demo, exported, tmp_path) -> None:
    declared = datasets.load_dataset_builder(str(exported), cache_dir=str(tmp_path / "cache")).info
    loaded = datasets.load_dataset(str(exported), cache_dir=str(tmp_path / "cache"))
    expected = {"train": 0, "validation": 0}
    for record in demo.records:
        expected["train" if split_of(record.image_id, 0.5) == "train" else "validation"] += 1
    assert {name: split.num_rows for name, split in loaded.items()} == expected
    assert {name: split.num_examples for name, split in declared.splits.items()} == expected
    assert declared.features == loaded["train"].features
    assert isinstance(declared.features["image"], datasets.Image)
    assert loaded["train"][0]["image"].size in {(96, 64), (80, 40), (48, 48)}


def test_the_card_names_the_dataset_version_profile_and_files(demo, exported) -> None:
    card = DatasetCard.load(exported / "README.md")
    assert card.data.to_dict()["configs"] == [
        {
            "config_name": "default",
            "data_files": [
                {"split": "train", "path": "data/train-*.parquet"},
                {"split": "validation", "path": "data/validation-*.parquet"},
            ],
        }
    ]
    assert "fld-engine" in card.data.tags
    assert f"| dataset | `{demo.root}` |" in card.text
    assert "| version | 1 (created 2026-11-24T12:00:00Z, run `demo`) |" in card.text
    assert "| profile | `demo` |" in card.text
    assert "| image metadata | location metadata (Exif GPS, XMP, IPTC) removed |" in card.text


def test_the_card_counts_images_and_annotations_per_split_and_type(demo, tmp_path) -> None:
    export_hf(demo.root, tmp_path / "hf", val_fraction=0.0)
    text = (tmp_path / "hf" / "README.md").read_text()
    for row in (
        "|  | train | validation |",
        "| images | 3 | 0 |",
        "| regions object | 5 | 0 |",
        "| regions ocr_line | 1 | 0 |",
        "| texts brief | 3 | 0 |",
        "| texts detailed | 1 | 0 |",
        "| phrases | 2 | 0 |",
    ):
        assert row in text


def test_the_card_gives_provenance_per_source_and_model_and_the_versions_models(demo) -> None:
    counts = CardCounts()
    for batch in iter_batches(demo.root):
        counts.add("train", pa.Table.from_batches([batch]))
    manifest = dataclasses.replace(require_manifest(demo.root), models={"detector": "tiny-detr", "ocr": "rapidocr"})
    text = card_body(demo.root, manifest, counts, keep_exif=False)
    assert "| regions | detr | tiny-detr | 4 |" in text
    assert "| regions | ocr | rapidocr | 2 |" in text
    assert "| texts | florence2 | tiny-florence@round1 | 1 |" in text
    assert "| phrases | grounder | tiny-grounding | 2 |" in text
    assert "| detector | tiny-detr |" in text and "| ocr | rapidocr |" in text
