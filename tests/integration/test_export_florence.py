"""The Florence-2 export: JSONL targets parse back through Florence2Processor to the records' geometry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import Florence2Processor

from engine.cli import main as cli
from engine.exports.florence import export_florence
from engine.exports.split import split_of
from engine.store.reader import iter_records
from tests.support.audit_dataset import build_demo_dataset


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo_dataset(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def processor(tiny_florence2_dir) -> Florence2Processor:
    return Florence2Processor.from_pretrained(tiny_florence2_dir)


@pytest.fixture(scope="module")
def exported(demo, tmp_path_factory) -> tuple[Path, dict]:
    destination = tmp_path_factory.mktemp("florence") / "out"
    report = export_florence(iter_records(demo.root), destination, val_fraction=0.5)
    lines = [json.loads(line) for name in ("train.jsonl", "val.jsonl") for line in (destination / name).open()]
    return destination, {"report": report, "lines": lines}


def parsed(processor, line: dict):
    size = (line["width"], line["height"])
    return processor.post_process_generation(line["suffix"], task=line["task"], image_size=size)[line["task"]]


def close(a, b, width: int, height: int) -> bool:
    tolerance = [max(width / 1000, 1.0), max(height / 1000, 1.0)] * (len(a) // 2)
    return len(a) == len(b) and all(abs(x - y) <= t for x, y, t in zip(a, b, tolerance, strict=True))


def lines_of(exported, image_id: str, task: str) -> list[dict]:
    return [line for line in exported[1]["lines"] if line["image_id"] == image_id and line["task"] == task]


def test_export_counts_samples_per_task_and_skips_images_without_any(exported) -> None:
    report = exported[1]["report"]
    assert report.images == 2 and report.skipped == {"no annotation for the chosen tasks": 1}
    assert report.annotations == {
        "samples <CAPTION>": 3,  # every brief text: the street's captioner's and refined one, the sign's
        "samples <DETAILED_CAPTION>": 1,
        "samples <OD>": 2,
        "samples <REGION_PROPOSAL>": 1,
        "samples <CAPTION_TO_PHRASE_GROUNDING>": 1,
        "samples <OCR>": 1,
        "samples <OCR_WITH_REGION>": 1,
        "samples <REGION_TO_OCR>": 1,  # the sign's line
        "samples <REGION_TO_CATEGORY>": 5,  # 4 street objects, the sign
        "samples <OPEN_VOCABULARY_DETECTION>": 3,  # car and person in the street, sign
    }
    assert sum(report.files.values()) == len(exported[1]["lines"]) == 19


def test_object_targets_parse_back_to_the_record_boxes(exported, processor, demo) -> None:
    street = demo.records[0]
    (line,) = lines_of(exported, street.image_id, "<OD>")
    assert line["prefix"] == "<OD>"
    result = parsed(processor, line)
    objects = [r for r in street.regions if r.kind == "object"]
    assert result["labels"] == [r.text for r in objects]
    assert all(close(got, r.bbox, 96, 64) for got, r in zip(result["bboxes"], objects, strict=True))


def test_grounding_targets_take_the_caption_and_parse_to_phrase_boxes(exported, processor, demo) -> None:
    street = demo.records[0]
    (line,) = lines_of(exported, street.image_id, "<CAPTION_TO_PHRASE_GROUNDING>")
    assert line["prefix"] == "<CAPTION_TO_PHRASE_GROUNDING>A red car next to a person <b>."
    result = parsed(processor, line)
    assert result["labels"] == ["A red car", "a person"]
    assert close(result["bboxes"][0], (8, 20, 48, 50), 96, 64) and close(result["bboxes"][1], (60, 8, 84, 60), 96, 64)


def test_ocr_targets_parse_back_to_text_and_quads(exported, processor, demo) -> None:
    sign = demo.records[1]
    (ocr,) = lines_of(exported, sign.image_id, "<OCR>")
    assert parsed(processor, ocr) == "OPEN <script>"
    (with_region,) = lines_of(exported, sign.image_id, "<OCR_WITH_REGION>")
    result = parsed(processor, with_region)
    assert result["labels"] == ["OPEN script"]  # markup characters are removed from labels
    assert close(result["quad_boxes"][0], (10, 10, 70, 10, 70, 30, 10, 30), 80, 40)


def test_every_line_parses_and_names_an_exported_image(exported, processor) -> None:
    destination, data = exported
    for line in data["lines"]:
        assert parsed(processor, line), line
        assert (destination / line["image"]).is_file()


def test_images_are_split_by_id_into_one_file_each(exported, demo) -> None:
    destination = exported[0]
    for split, name in (("train", "train.jsonl"), ("val", "val.jsonl")):
        ids = {json.loads(line)["image_id"] for line in (destination / name).open()}
        assert ids == {r.image_id for r in demo.records[:2] if split_of(r.image_id, 0.5) == split}


def test_tasks_option_limits_the_export_and_rejects_unknown_tasks(demo, tmp_path, capsys) -> None:
    assert cli(["export", str(demo.root), "--format", "florence", "--to", str(tmp_path / "f"), "--tasks", "<OCR>"]) == 0
    out = capsys.readouterr().out
    assert "samples <OCR>" in out and "<OD>" not in out
    lines = [line for name in ("train.jsonl", "val.jsonl") for line in (tmp_path / "f" / name).read_text().splitlines()]
    assert [json.loads(line)["task"] for line in lines] == ["<OCR>"]
    assert cli(["export", str(demo.root), "--format", "florence", "--to", str(tmp_path / "g"), "--tasks", "<XX>"]) == 2
    assert "unknown Florence-2 tasks ['<XX>']" in capsys.readouterr().err
