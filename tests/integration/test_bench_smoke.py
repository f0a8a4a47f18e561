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


@pytest.mark.slow
def test_input_sources_scenario_runs_every_variant_over_the_same_images(tmp_path, monkeypatch) -> None:
    from bench import input_sources

    monkeypatch.setattr(input_sources, "RUNS", tmp_path / "runs")
    profile = tmp_path / "one_filter.yaml"
    profile.write_text(json.dumps({"filters": [{"name": "confidence", "backend": "confidence"}]}))
    result = input_sources.main(["--images", "4", "--per-shard", "2", "--workers", "1", "--profile", str(profile)])
    variants = ("local_files", "s3_files", "local_webdataset", "s3_webdataset", "local_parquet", "s3_parquet")
    assert [(result[v]["annotated"], result[v]["quarantined"]) for v in variants] == [(4, 0)] * 6
    assert result["seconds_vs_local_files"]["local_files"] == 1
    assert all(
        result["seconds_vs_local_files"][v]
        == pytest.approx(result[v]["seconds"] / result["local_files"]["seconds"], abs=1e-3)
        for v in variants
    )


@pytest.mark.slow
def test_ceiling_scenario_times_engine_and_script_over_the_same_images(tmp_path, monkeypatch) -> None:
    from bench import ceiling

    monkeypatch.setattr(ceiling, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(ceiling, "IMAGES", tmp_path / "images")
    profile = tmp_path / "one_filter.yaml"
    profile.write_text(json.dumps({"filters": [{"name": "confidence", "backend": "confidence"}]}))
    result = ceiling.main(["--images", "6", "--rounds", "2", "--workers", "1", "--profile", str(profile)])
    assert result["images"] == 6 and result["stages"] == ["confidence"]
    assert [list(r)[0::2] for r in result["rounds"]] == [["engine", "script"], ["script", "engine"]]
    assert result["engine_vs_script"] == pytest.approx(result["engine_s"] / result["script_s"])
    assert result["engine_s"] == min(r["engine"] for r in result["rounds"]) and result["loop_s"] > 0
    assert len(list((tmp_path / "images" / "n6").glob("*.png"))) == 6


def test_tiny_pngs_are_48_by_64_and_distinct(tmp_path) -> None:
    from PIL import Image

    from bench.ceiling import tiny_pngs

    paths = sorted(tiny_pngs(5, tmp_path).glob("*.png"))
    assert [Image.open(p).size for p in paths] == [(64, 48)] * 5
    assert len({p.read_bytes() for p in paths}) == 5


def test_planning_simulation_groups_copies_and_carries_the_previous_version_over(tmp_path) -> None:
    from bench.driver_memory import measure_planning, prepare_planning

    prepare_planning(200, tmp_path / "plan", "offline")
    result = measure_planning(tmp_path / "plan", "offline")
    # 200 files: 4 second copies (every 50th), 1 quarantined (every 200th), 2 near-duplicates (every 100th
    # distinct image) and 40 images too small for the min_side gate (every 5th) that curation skips; 90% of the
    # 155 unique images that pass the gate in the previous version, less the 2 copies skipped (tombstoned).
    assert (result["files"], result["unique"], result["quarantined"]) == (200, 195, 1)
    # Listed by the Parquet table of paths, every file unchanged since the previous probe index: all hits.
    assert (result["cache_hits"], result["cache_misses"]) == (200, 0)
    assert (result["skipped"], result["near_duplicates"]) == (42, 2)
    assert (result["carried"], result["new"], result["tombstoned"]) == (137, 16, 2) and result[
        "expected_carried"
    ] == 139
    assert result["planning_s"] > 0 and result["driver_peak_mib"] >= result["driver_before_mib"] > 0
    assert result["driver_heap_growth_mib"] >= max(result["heap_growth_by_phase_mib"].values()) - 1e-9
    assert result["near_duplicate_search"] == "driver"  # Ray only from 100,000 images, as in a run
    assert result["probe_parts"] == "driver"  # one part (below ray.plan_part_rows files) runs here
