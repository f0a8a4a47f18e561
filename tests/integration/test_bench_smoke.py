"""The benchmark scenarios run end to end at tiny sizes and report what they promise."""

from __future__ import annotations

import json

import pytest

from bench import overhead, writer_io
from bench.__main__ import main as bench_main
from bench.cluster import scaled_config
from bench.images import bench_images
from engine.config.profile import parse_config
from engine.config.typed_config import to_plain

TINY_OCR = {"specialists": [{"name": "ocr", "backend": "rapidocr", "options": {"words": False}}]}


def test_writer_scenario_reports_positive_throughputs_for_both_sides() -> None:
    result = writer_io.main(["--rows", "64", "--repeat", "1"])
    assert result["rows"] == 64 and result["annotations_per_row"] > 5
    for side in ("engine", "pyarrow"):
        assert result["write_rows_per_s"][side] > 0 and result["read_rows_per_s"][side] > 0
    assert result["write_ratio"] > 0 and result["read_ratio"] > 0 and result["target_ratio"] == 1.2
    assert result["write_cpu_ratio"] > 0 and result["read_cpu_ratio"] > 0


@pytest.mark.slow
def test_overhead_scenario_runs_loop_and_pipeline_on_the_same_work(tmp_path, monkeypatch) -> None:
    profile = tmp_path / "tiny.yaml"
    profile.write_text(json.dumps(TINY_OCR))
    monkeypatch.setattr(overhead, "RUNS", tmp_path / "runs")
    result = overhead.main(["--images", "3", "--profile", str(profile), "--workers", "1"])
    assert result["images"] == 3 and result["stages"] == ["ocr(rapidocr)"]
    assert result["loop"]["images_per_s"] > 0 and result["pipeline_1_worker"]["images_per_s"] > 0
    assert result["pipeline_1_worker"]["annotated"] == 3 and result["same_regions"] is True
    assert result["loop"]["cpu_s"] > 0 and result["pipeline_1_worker"]["cpu_s"] > 0
    assert result["overhead_1_worker"] == pytest.approx(
        result["pipeline_1_worker"]["seconds"] / result["loop"]["seconds"]
    )


def test_scaled_config_gives_every_model_stage_one_actor_per_worker_within_the_cpus() -> None:
    config = parse_config(
        {
            "specialists": [
                {"name": "a", "backend": "rapidocr", "resources": {"num_cpus": 1, "pool_size": 1}},
                {"name": "b", "backend": "rapidocr", "resources": {"num_cpus": 2, "pool_size": 3}},
            ]
        }
    )
    scaled = scaled_config(config, 2)
    assert [s.resources.pool_size for s in scaled.specialists] == [2, 2]
    assert sum(s.resources.num_cpus * s.resources.pool_size for s in scaled.specialists) == pytest.approx(2.0)
    assert scaled.ray.num_cpus == 3
    assert to_plain(scaled.specialists[0].options) == to_plain(config.specialists[0].options)


def test_bench_images_are_distinct_and_cached(tmp_path) -> None:
    first = bench_images(4, tmp_path)
    assert [p.suffix for p in first] == [".png", ".jpg", ".jpg", ".png"]
    assert len({p.read_bytes() for p in first}) == 4
    mtimes = [p.stat().st_mtime_ns for p in first]
    assert [p.stat().st_mtime_ns for p in bench_images(4, tmp_path)] == mtimes


def test_unknown_scenario_is_a_usage_error(capsys) -> None:
    assert bench_main(["nope"]) == 2
    assert "unknown scenario 'nope'" in capsys.readouterr().err
