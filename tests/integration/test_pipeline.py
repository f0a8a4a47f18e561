"""End to end through local Ray: images in, versioned shards out, bad inputs quarantined, reruns never duplicate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from engine.cli import main as cli
from engine.config.profile import parse_config
from engine.run import RunRequest, run_pipeline
from engine.store.reader import read_version
from tests.support.image_files import write_ingestion_zoo
from tests.support.local_ray import local_ray

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "images"
PROFILE = {
    "specialists": [
        {"name": "ocr", "backend": "rapidocr", "options": {"words": False}, "resources": {"batch_size": 2}}
    ],
    "writer": {"rows_per_shard": 3, "row_group_rows": 2},
    "ray": {"num_cpus": 2},
}


@pytest.fixture(scope="module")
def ray_local():
    with local_ray():
        yield


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    for name in ("text_sign.png", "text_poster.png", "text_invoice.png", "chelsea.jpg"):
        shutil.copy(SAMPLES / name, folder / name)
    write_ingestion_zoo(folder / "zoo")
    return folder


@pytest.fixture(scope="module")
def first_run(ray_local, inputs, tmp_path_factory):
    output = tmp_path_factory.mktemp("out")
    request = RunRequest((str(inputs),), output, parse_config(PROFILE), progress_bars=False)
    return output, run_pipeline(request, progress=lambda _: None)


def test_run_writes_shards_that_pyarrow_and_pandas_read(first_run) -> None:
    output, result = first_run
    manifest = result.manifest
    # 4 samples + 6 good zoo files of which 2 share bytes -> 9 unique images, 4 bad zoo files.
    assert result.files == 14 and result.annotated == 9 and result.quarantined == 4
    assert sum(s.rows for s in manifest.shards) == 9 and len(manifest.shards) == 3
    table = read_version(output)
    assert table.num_rows == 9 and len(set(table.column("image_id").to_pylist())) == 9
    frame = pd.concat(pd.read_parquet(output / s.path) for s in manifest.shards)
    lines = [r["text"] for regions in frame["regions"] for r in regions if r["kind"] == "ocr_line"]
    assert "Open Monday to Friday" in lines and "jumps over the lazy dog" in lines
    assert manifest.counts["regions"]["ocr_line"] == len(lines)
    metadata = pq.ParquetFile(output / manifest.shards[0].path).metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD" and metadata.num_row_groups == 2


def test_every_input_is_annotated_or_quarantined(first_run, inputs) -> None:
    output, result = first_run
    annotated = {uri for uris in read_version(output, columns=["source_uris"]).column(0).to_pylist() for uri in uris}
    quarantine = pd.concat(pd.read_parquet(output / s.path) for s in result.manifest.quarantine)
    all_files = {str(p) for p in inputs.rglob("*") if p.is_file()}
    assert annotated | set(quarantine["source_uri"]) == all_files
    assert annotated.isdisjoint(quarantine["source_uri"])
    assert sorted(quarantine["reason"]) == ["empty", "not_an_image", "too_large", "truncated"]
    assert result.manifest.counts["quarantined"] == {
        "total": 4,
        "empty": 1,
        "not_an_image": 1,
        "too_large": 1,
        "truncated": 1,
    }


def test_manifest_is_complete_and_versioned(first_run) -> None:
    output, _ = first_run
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest == json.loads((output / "versions" / "v000001.json").read_text())
    assert manifest["version"] == 1 and manifest["schema_version"] == "1.3.0"
    assert manifest["models"]["ocr"].startswith("rapidocr-onnxruntime==")
    assert [s["rows"] for s in manifest["shards"]] == [3, 3, 3]
    assert not list(output.rglob("*.partial"))


def test_rerun_on_the_same_output_does_not_duplicate_rows(first_run, inputs) -> None:
    output, first = first_run
    request = RunRequest((str(inputs),), output, parse_config(PROFILE), progress_bars=False, always_publish=True)
    second = run_pipeline(request, progress=lambda _: None)
    assert second.manifest.version == 2 and second.annotated == 0 and second.carried == 9
    table = read_version(output)
    assert table.num_rows == 9 and len(set(table.column("image_id").to_pylist())) == 9
    assert [s.path for s in second.manifest.shards] == [s.path for s in first.manifest.shards]


def test_inspect_prints_counts_and_reasons(first_run, capsys) -> None:
    output, _ = first_run
    assert cli(["inspect", str(output), "--version", "1"]) == 0
    printed = capsys.readouterr().out
    assert "version 1" in printed and "ocr_line=" in printed and "too_large=1" in printed
    assert "FLD-5B comparison over 9 images" in printed and "regions per image" in printed


def test_cli_reports_user_errors_in_one_line(tmp_path, capsys) -> None:
    assert cli(["inspect", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "no published version" in error
    assert cli(["run", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_probing_through_ray_tasks_finds_what_probing_in_process_finds(ray_local, inputs) -> None:

    from engine.ingest.probe import probe_batch, probe_on_ray
    from engine.ingest.sources import Source, SourceKind, sources_table

    files = sorted(str(p) for p in inputs.rglob("*") if p.is_file())
    sources = [Source(SourceKind.FILE, f) for f in files]
    config = parse_config(PROFILE)
    here = probe_batch(sources_table(sources), **config.ingest.limits()).to_pylist()
    on_ray = probe_on_ray(sources, config.ingest.limits()).to_pylist()  # Arrow: no Python rows in the driver

    def comparable(rows):
        return sorted(({k: v for k, v in row.items() if k != "checked_ns"} for row in rows), key=str)

    assert len(on_ray) == len(files) and comparable(on_ray) == comparable(here)
    assert sum(row["reason"] is not None for row in on_ray) == 4
