"""Every setting's value is checked when the profile loads: a value out of range fails naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.cli import main
from engine.config.profile import parse_config
from engine.config.typed_config import ConfigError

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "images"

BAD_VALUES = [
    ({"writer": {"rows_per_shard": 0}}, "writer.rows_per_shard: must be >= 1, got 0"),
    ({"writer": {"row_group_rows": -5}}, "writer.row_group_rows: must be >= 1, got -5"),
    ({"writer": {"compression": "zstdd"}}, "writer.compression: 'zstdd' is not one of"),
    ({"writer": {"compression": "gzip", "compression_level": 42}}, "compression_level for gzip must be in [1, 9]"),
    ({"ingest": {"max_bytes": 0}}, "ingest.max_bytes: must be >= 1, got 0"),
    ({"ingest": {"max_pixels": -1}}, "ingest.max_pixels: must be >= 1"),
    ({"ingest": {"extensions": []}}, "ingest.extensions: must not be empty"),
    ({"ingest": {"extensions": ["jpg"]}}, "extensions are written with their dot, like '.jpg': 'jpg'"),
    ({"ray": {"decode_batch_size": 0}}, "ray.decode_batch_size: must be >= 1"),
    ({"ray": {"num_cpus": 0}}, "ray.num_cpus: must be >= 1"),
    ({"refine": {"rounds": -1}}, "refine.rounds: must be >= 0"),
    ({"refine": {"task_weights": {"<OD>": 1.5}}}, "refine.task_weights.<OD>: must be <= 1, got 1.5"),
    ({"refine": {"train": {"learning_rate": 0}}}, "refine.train.learning_rate: must be > 0"),
    ({"refine": {"train": {"warmup_fraction": 2}}}, "refine.train.warmup_fraction: must be <= 1"),
    ({"refine": {"merge": {"match_iou": -0.1}}}, "refine.merge.match_iou: must be >= 0"),
    (
        {"specialists": [{"backend": "rapidocr", "resources": {"batch_size": 0}}]},
        "specialists[0].resources.batch_size: must be >= 1, got 0",
    ),
    (
        {"specialists": [{"backend": "rapidocr", "resources": {"num_gpus": -1}}]},
        "specialists[0].resources.num_gpus: must be >= 0",
    ),
    (
        {"specialists": [{"backend": "rapidocr", "resources": {"num_gpus": 1.5}}]},
        "num_gpus above 1 must be a whole number, got 1.5",
    ),
    (
        {"specialists": [{"backend": "rapidocr", "options": {"min_score": 1.5}}]},
        "specialists[0].options.min_score: must be <= 1, got 1.5",
    ),
    (
        {"specialists": [{"backend": "haar", "options": {"scale_factor": 0}}]},
        "specialists[0].options.scale_factor: must be > 0",
    ),
    (
        {"filters": [{"backend": "nms", "options": {"iou": {"object": 2}}}]},
        "filters[0].options.iou.object: must be <= 1",
    ),
    (
        {"filters": [{"backend": "spacy_text", "options": {"brief": {"max_tokens": 0}}}]},
        "filters[0].options.brief.max_tokens: must be >= 1",
    ),
    (
        {"filters": [{"backend": "geometry", "options": {"min_area_fraction": {"object": 3}}}]},
        "filters[0].options.min_area_fraction.object: must be <= 1",
    ),
    ({"curation": {"gates": {"min_side": 0}}}, "curation.gates: min_side must be at least 1 pixel"),
]


@pytest.mark.parametrize(("data", "message"), BAD_VALUES, ids=[m.split(":")[0] for _, m in BAD_VALUES])
def test_a_value_out_of_range_fails_at_load_naming_its_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(data)
    assert message in str(raised.value)


def test_values_at_their_bounds_load() -> None:
    config = parse_config(
        {
            "writer": {"rows_per_shard": 1, "compression": "snappy", "compression_level": 3},
            "specialists": [{"backend": "rapidocr", "options": {"min_score": 0.0}, "resources": {"num_gpus": 2}}],
        }
    )
    assert config.writer.rows_per_shard == 1
    assert config.writer.level() is None  # snappy has no levels: the level is not passed on
    assert config.specialists[0].resources.num_gpus == 2.0


def test_the_cli_refuses_a_bad_value_with_exit_2_before_any_work(tmp_path: Path, capsys) -> None:
    profile = tmp_path / "bad.yaml"
    profile.write_text(yaml.safe_dump({"extends": "offline", "writer": {"rows_per_shard": 0}}))
    output = tmp_path / "out"
    code = main(["run", "--input", str(SAMPLES), "--output", str(output), "--config", str(profile)])
    assert code == 2
    assert "writer.rows_per_shard: must be >= 1, got 0" in capsys.readouterr().err
    assert not output.exists()
