"""engine.api on a published dataset (no Ray): every reader takes a str, a Path or a URI and gives the same rows."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

import engine.api as fld
from engine.config.typed_config import ConfigError
from engine.errors import OutputError
from tests.support.audit_dataset import build_demo_dataset


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo_dataset(tmp_path_factory.mktemp("api"))


def ids(table) -> list[str]:
    return sorted(table.column("image_id").to_pylist())


@pytest.mark.parametrize("kind", [str, Path, lambda p: f"file://{p}"])
def test_read_table_takes_a_str_a_path_or_a_uri(demo, kind) -> None:
    table = fld.read_table(kind(demo.root))
    assert table.num_rows == 3
    assert ids(table) == sorted(r.image_id for r in demo.records)


def test_read_table_columns_and_version(demo) -> None:
    table = fld.read_table(str(demo.root), version=1, columns=["image_id", "width"])
    assert table.column_names == ["image_id", "width"]


def test_read_pandas_has_one_row_per_image_with_nested_regions(demo) -> None:
    frame = fld.read_pandas(Path(demo.root), columns=["image_id", "regions"])
    assert len(frame) == 3
    by_id = dict(zip(frame["image_id"], frame["regions"].map(len), strict=True))
    assert by_id == {r.image_id: len(r.regions) for r in demo.records}


def test_read_dataset_is_a_datasets_dataset_with_the_same_rows(demo) -> None:
    dataset = fld.read_dataset(str(demo.root))
    assert isinstance(dataset, datasets.Dataset)
    assert dataset.num_rows == 3
    assert sorted(dataset["image_id"]) == sorted(r.image_id for r in demo.records)
    first = next(r for r in demo.records if r.regions)
    (regions,) = [row["regions"] for row in dataset if row["image_id"] == first.image_id]
    assert [r["kind"] for r in regions] == [r.kind for r in first.regions]


def test_records_versions_and_quarantine(demo) -> None:
    assert sorted(r.image_id for r in fld.records(str(demo.root))) == sorted(r.image_id for r in demo.records)
    assert [m.version for m in fld.versions(Path(demo.root))] == [1]
    quarantined = fld.quarantine(str(demo.root))
    assert quarantined.column("reason").to_pylist() == ["truncated"]


def test_audit_writes_the_html_report_and_its_text(demo, tmp_path) -> None:
    report = fld.audit(str(demo.root), html=tmp_path / "report.html", sample=2)
    assert report.manifest.version == 1
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert "truncated" in fld.audit_text(report)


def test_export_writes_coco_to_a_str_or_path(demo, tmp_path) -> None:
    report = fld.export(Path(demo.root), "coco", str(tmp_path / "coco"), val_fraction=0.0)
    instances = json.loads((tmp_path / "coco" / "instances_train.json").read_text())
    assert len(instances["images"]) == report.images > 0


def test_export_refuses_an_unknown_format_in_one_line(demo, tmp_path) -> None:
    with pytest.raises(OutputError, match=r"^format 'tfrecord': expected one of florence, coco, yolo, hf$"):
        fld.export(demo.root, "tfrecord", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_load_profile_takes_overrides_and_a_path(tmp_path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("extends: offline\nwriter: {rows_per_shard: 9}\n")
    assert fld.load_profile(profile, ["writer.row_group_rows=3"]).writer.row_group_rows == 3
    with pytest.raises(ConfigError, match=r"^--set writer\.nope=1: writer: unknown key 'nope'"):
        fld.load_profile("offline", ["writer.nope=1"])


def test_run_refuses_overrides_on_a_loaded_config(tmp_path) -> None:
    with pytest.raises(ValueError, match="overrides apply to a profile by name or path"):
        fld.run(tmp_path, tmp_path / "out", config=fld.load_profile(), overrides=["writer.rows_per_shard=1"])
