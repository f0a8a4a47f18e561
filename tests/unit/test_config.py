"""Configuration: YAML profiles into typed objects; bad keys and values fail naming the key."""

from __future__ import annotations

import pytest

from engine.config.profile import load_config, parse_config
from engine.config.settings import EngineConfig
from engine.config.typed_config import ConfigError, to_plain
from specialists.ocr_rapid import RapidOcrOptions


def test_the_default_profile_is_offline_with_rapidocr() -> None:
    config = load_config()
    assert isinstance(config, EngineConfig) and config.profile == "offline"
    ocr = next(s for s in config.specialists if s.backend == "rapidocr")
    assert isinstance(ocr.options, RapidOcrOptions)
    assert ocr.resources.batch_size >= 1


def test_stage_options_and_resources_are_typed() -> None:
    config = parse_config(
        {
            "specialists": [
                {
                    "name": "ocr",
                    "backend": "rapidocr",
                    "options": {"min_score": 0.7, "words": False},
                    "resources": {"num_cpus": 0.5, "batch_size": 8, "pool_size": 2},
                }
            ],
            "writer": {"rows_per_shard": 10},
        }
    )
    stage = config.specialists[0]
    assert stage.options == RapidOcrOptions(min_score=0.7, words=False)
    assert (stage.resources.num_cpus, stage.resources.batch_size, stage.resources.pool_size) == (0.5, 8, 2)
    assert config.writer.rows_per_shard == 10


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"writer": {"rows_per_shard": "many"}}, "writer.rows_per_shard: expected an integer, got 'many'"),
        ({"writerr": {}}, "config: unknown key 'writerr'"),
        ({"ingest": {"max_pixel": 5}}, "ingest: unknown key 'max_pixel'"),
        ({"specialists": [{"backend": "nope"}]}, "specialists\\[0\\].backend: 'nope' is not one of"),
        (
            {"specialists": [{"backend": "rapidocr", "options": {"min_score": "high"}}]},
            "specialists\\[0\\].options.min_score: expected a number",
        ),
        (
            {"specialists": [{"backend": "rapidocr", "resources": {"batch_size": 0}}]},
            "specialists\\[0\\].resources.batch_size: must be >= 1, got 0",
        ),
        (
            {"specialists": [{"backend": "rapidocr"}, {"backend": "rapidocr"}]},
            "stage name 'rapidocr' is used twice",
        ),
    ],
)
def test_bad_config_fails_naming_the_key(data, message) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_profile_files_are_read_with_safe_load(tmp_path) -> None:
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text("writer: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(unsafe)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="no profile file or bundled profile named 'nosuch'"):
        load_config("nosuch")


def test_fingerprint_changes_with_stage_settings_only() -> None:
    base = {"specialists": [{"name": "ocr", "backend": "rapidocr"}]}
    changed = {"specialists": [{"name": "ocr", "backend": "rapidocr", "options": {"min_score": 0.9}}]}
    assert parse_config(base).fingerprint() == parse_config({**base, "writer": {"rows_per_shard": 3}}).fingerprint()
    assert parse_config(base).fingerprint() != parse_config(changed).fingerprint()


def test_run_with_refinement_rounds_but_no_checkpoint_fails_before_any_work(tmp_path, capsys) -> None:
    from engine.cli import main as cli

    profile = tmp_path / "refining.yaml"
    profile.write_text("specialists: [{backend: rapidocr}]\nrefine: {rounds: 1}\n")
    (tmp_path / "in").mkdir()
    assert (
        cli(["run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--config", str(profile)]) == 2
    )
    assert "refine.checkpoint is not set" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_fld5b_profile_parses_with_florence_and_a_refine_section() -> None:
    config = load_config("fld5b")
    backends = [s.backend for s in config.specialists]
    assert backends[0] == "florence2" and "rapidocr" in backends
    assert config.specialists[0].resources.num_gpus == 0.5
    assert config.refine.checkpoint == "florence-community/Florence-2-base" and config.filters


def test_models_lists_where_weights_were_looked_for(capsys) -> None:
    from engine.cli import main as cli

    assert cli(["models"]) == 0
    assert "3 of 3 specialists have their weights (profile offline)" in capsys.readouterr().out
    assert cli(["models", "--config", "fld5b"]) == 1
    printed = capsys.readouterr().out
    assert "MISSING florence2 (florence2): florence-community/Florence-2-large" in printed
    assert "models--florence-community--Florence-2-large" in printed


def test_a_run_with_missing_weights_fails_before_any_work(tmp_path, capsys) -> None:
    from engine.cli import main as cli

    (tmp_path / "in").mkdir()
    assert cli(["run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--config", "fld5b"]) == 2
    error = capsys.readouterr().err
    assert "weights missing for florence2 (florence2) 'florence-community/Florence-2-large': looked in" in error
    assert not (tmp_path / "out" / "manifest.json").exists() and not (tmp_path / "out" / "annotations").exists()


def test_each_stage_knows_its_kind_from_its_profile_section() -> None:
    config = parse_config({"specialists": [{"name": "ocr", "backend": "rapidocr"}], "filters": [{"backend": "nms"}]})
    assert [(s.name, s.kind) for s in config.stages] == [("ocr", "specialists"), ("nms", "filters")]
    assert type(config.filters[0].create()).__name__ == "NmsFilter"


def test_a_stage_config_as_plain_data_is_its_profile_entry() -> None:
    stage = parse_config({"filters": [{"backend": "nms", "options": {"iou": {"object": 0.6}}}]}).filters[0]
    assert set(to_plain(stage)) == {"name", "backend", "resources", "options", "limits"}
    assert parse_config({"filters": [to_plain(stage)]}).filters[0] == stage


def test_a_stages_list_interleaves_specialists_and_filters_in_its_order() -> None:
    config = parse_config(
        {
            "stages": [
                {"name": "ocr", "backend": "rapidocr"},
                {"name": "confidence", "backend": "confidence"},
                {"name": "haar", "backend": "haar"},
                {"name": "nms", "backend": "nms"},
            ]
        }
    )
    assert [(s.name, s.kind) for s in config.stages] == [
        ("ocr", "specialists"), ("confidence", "filters"), ("haar", "specialists"), ("nms", "filters")]  # fmt: skip
    assert [s.name for s in config.specialists] == ["ocr", "haar"] and [s.name for s in config.filters] == [
        "confidence", "nms"]  # fmt: skip


def test_the_order_counts_in_the_config_fingerprint_only_when_interleaved() -> None:
    sections = parse_config({"specialists": [{"backend": "haar"}], "filters": [{"backend": "nms"}]})
    same = parse_config({"stages": [{"backend": "haar"}, {"backend": "nms"}]})
    reversed_ = parse_config({"stages": [{"backend": "nms"}, {"backend": "haar"}]})
    assert [s.name for s in sections.stages] == [s.name for s in same.stages] == ["haar", "nms"]
    assert sections.fingerprint() != reversed_.fingerprint() != same.fingerprint()
    assert parse_config({"specialists": [{"backend": "haar"}]}).order == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"stages": [{"backend": "haar"}], "filters": [{"backend": "nms"}]}, "either as one ordered 'stages:' list"),
        ({"stages": [{"backend": "nope"}]}, r"stages\[0\]\.backend: 'nope' is not one of "),
        (
            {"stages": [{"backend": "haar", "name": "x"}, {"backend": "nms", "name": "x"}]},
            "stage name 'x' is used twice",
        ),
        ({"stages": [{"backend": "nms", "options": {"iou": 3}}]}, r"stages\[0\]\.options\.iou: expected a mapping"),
    ],
)
def test_a_bad_stages_list_names_the_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_fld5b_runs_in_the_papers_order() -> None:
    config = load_config("fld5b")
    order = [s.name for s in config.stages]
    kinds = {s.name: s.kind for s in config.stages}
    first_filter = next(i for i, name in enumerate(order) if kinds[name] == "filters")
    # Phase 1 (captions, OCR, detection) before any filter; a scored DINO-family detector among them.
    assert order[:first_filter] == ["florence2", "ocr", "detector"]
    assert config.stages[2].backend == "hf_detection" and "rtdetr" in config.stages[2].options.model
    assert "<CAPTION_TO_PHRASE_GROUNDING>" not in config.stages[0].options.tasks  # grounding is phase 2's
    # Phase 2: the text and region filters, then region text (agreement-filtered), aggregation, the aggregator's
    # texts through the text filter, grounding and SAM on what was kept; the final filters last.
    position = {name: i for i, name in enumerate(order)}
    assert position["text"] < position["region_text"] < position["agreement"] < position["aggregator"]
    assert position["aggregator"] < position["text_generated"] < position["grounding"] < position["sam"]
    assert [s.backend for s in config.stages[position["sam"] + 1 :]] == ["confidence", "geometry", "nms", "blacklist"]
    assert "region_text_agreement" in [s.backend for s in config.filters]
