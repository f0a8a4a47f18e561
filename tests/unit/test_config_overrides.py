"""``--set key.sub=value``: YAML-typed values laid over the resolved profile and validated like the file;
``fld-engine config show`` prints the resolved profile as YAML that loads back to the same config."""

from __future__ import annotations

import pytest
import yaml

from engine.cli import main as cli
from engine.config.overrides import parse_override
from engine.config.profile import load_config, parse_config
from engine.config.show import profile_yaml
from engine.config.typed_config import ConfigError


def stage(config, name):
    (found,) = [s for s in config.stages if s.name == name]
    return found


def test_a_value_is_read_as_yaml() -> None:
    assert parse_override("a.b=8").value == 8
    assert parse_override("a.b=0.25").value == 0.25
    assert parse_override("a.b=true").value is True
    assert parse_override("a.b=null").value is None
    assert parse_override("a.b=[x, y]").value == ["x", "y"]
    assert parse_override("a.b={object: 0.4}").value == {"object": 0.4}
    assert parse_override("a.b=x=y").value == "x=y"
    assert parse_override("a.b.c=").path == ("a", "b", "c")


@pytest.mark.parametrize("text", ["writer", "=3", "writer..rows=3", ".writer=3"])
def test_a_malformed_override_is_refused_naming_it(text) -> None:
    with pytest.raises(ConfigError, match=f"^--set {text}: expected KEY=VALUE"):
        parse_override(text)


def test_an_override_changes_only_its_key() -> None:
    config = load_config("offline", ["writer.rows_per_shard=500"])
    assert (config.writer.rows_per_shard, config.writer.row_group_rows) == (500, 256)
    assert config.stages == load_config("offline").stages


def test_a_stage_is_addressed_by_name_in_a_stages_list() -> None:
    config = load_config("fld5b", ["stages.ocr.resources.batch_size=8", "stages.nms.options.iou.object=0.6"])
    assert stage(config, "ocr").resources.batch_size == 8
    assert stage(config, "ocr").resources.pool_size == stage(load_config("fld5b"), "ocr").resources.pool_size
    assert stage(config, "nms").options.iou["object"] == 0.6
    assert stage(config, "nms").options.iou["ocr_line"] == stage(load_config("fld5b"), "nms").options.iou["ocr_line"]
    assert [s.name for s in config.stages] == [s.name for s in load_config("fld5b").stages]


def test_stages_name_finds_a_stage_of_a_profile_with_specialists_and_filters() -> None:
    config = load_config(
        "offline", ["stages.ocr.options.min_score=0.7", "filters.confidence.options.min_phrase_score=0.4"]
    )
    assert stage(config, "ocr").options.min_score == 0.7
    assert stage(config, "confidence").options.min_phrase_score == 0.4


def test_a_stage_is_addressed_by_index_and_a_mapping_value_merges_nothing() -> None:
    config = load_config("offline", ["specialists.0.resources={batch_size: 2}"])
    assert stage(config, "ocr").resources.batch_size == 2
    assert stage(config, "ocr").resources.num_cpus == 1.0  # the default, not offline's value: replaced whole


def test_later_overrides_win() -> None:
    assert load_config("offline", ["writer.rows_per_shard=5", "writer.rows_per_shard=7"]).writer.rows_per_shard == 7


def test_overrides_apply_over_what_a_profile_extends(tmp_path) -> None:
    child = tmp_path / "child.yaml"
    child.write_text("extends: offline\nwriter: {rows_per_shard: 10}\n")
    config = load_config(child, ["writer.row_group_rows=5"])
    assert (config.writer.rows_per_shard, config.writer.row_group_rows) == (10, 5)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("writer.rows_per_shrd=5", "writer: unknown key 'rows_per_shrd' (known keys: compression, "),
        ("writer.rows_per_shard=many", "writer.rows_per_shard: expected an integer, got 'many'"),
        (
            "stages.ocr.batch_size=8",
            "specialists[0]: unknown key 'batch_size' (known keys: backend, limits, name, options",
        ),
        ("stages.ocr.resources.batch_size=0", "specialists[0].resources.batch_size: must be >= 1, got 0"),
        ("stages.nosuch.options.x=1", "no stage named 'nosuch' (stages: ocr, haar, grabcut, text, confidence, "),
        ("writer.rows_per_shard.x=1", "writer.rows_per_shard is 1000, not a mapping"),
        ("nosuch=1", "config: unknown key 'nosuch'"),
    ],
)
def test_a_bad_override_is_refused_naming_the_override_and_the_key(override, message) -> None:
    with pytest.raises(ConfigError) as error:
        load_config("offline", [override])
    assert str(error.value).startswith(f"--set {override}: ")
    assert message in str(error.value)


def test_run_refuses_a_bad_override_in_one_line_with_exit_2(tmp_path, capsys) -> None:
    output = tmp_path / "out"
    argv = ["run", "--input", str(tmp_path), "--output", str(output), "--set", "writer.rows_per_shard=x"]
    assert cli(argv) == 2
    error = capsys.readouterr().err
    assert error == (
        "fld-engine run: error: --set writer.rows_per_shard=x: writer.rows_per_shard: expected an integer, got 'x'\n"
    )
    assert not output.exists()


@pytest.mark.parametrize("name", ["offline", "fld5b"])
def test_the_resolved_profile_round_trips(name) -> None:
    config = load_config(name)
    assert parse_config(yaml.safe_load(profile_yaml(config)), profile=name) == config


def test_config_show_prints_the_overrides_applied(capsys) -> None:
    argv = [
        "config",
        "show",
        "--config",
        "fld5b",
        "--set",
        "stages.ocr.resources.batch_size=8",
        "--set",
        "ray.num_cpus=3",
    ]
    assert cli(argv) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    (ocr,) = [s for s in shown["stages"] if s["name"] == "ocr"]
    assert ocr["resources"]["batch_size"] == 8
    assert shown["ray"]["num_cpus"] == 3
    expected = load_config("fld5b", ["stages.ocr.resources.batch_size=8", "ray.num_cpus=3"])
    assert parse_config(shown, profile="fld5b") == expected


def test_config_show_of_a_profile_file_can_be_run_as_that_profile(tmp_path, capsys) -> None:
    child = tmp_path / "child.yaml"
    child.write_text("extends: offline\nfilters: [{name: nms, backend: nms}]\n")
    assert cli(["config", "show", "--config", str(child)]) == 0
    resolved = tmp_path / "resolved.yaml"
    resolved.write_text(capsys.readouterr().out)
    assert load_config(resolved).stages == load_config(child).stages
    assert [s.name for s in load_config(resolved).filters] == ["nms"]


def test_a_stage_s_pixel_limits_survive_config_show_and_an_override(tmp_path) -> None:
    profile = tmp_path / "limits.yaml"
    profile.write_text("extends: offline\nspecialists: [{name: ocr, backend: rapidocr, limits: {max_pixels: 4000}}]\n")
    config = load_config(profile, ["stages.ocr.options.min_score=0.7"])
    assert (stage(config, "ocr").limits.max_pixels, stage(config, "ocr").options.min_score) == (4000, 0.7)
    assert parse_config(yaml.safe_load(profile_yaml(config)), profile="limits") == config
    config = load_config("offline", ["stages.ocr.limits.max_aspect_ratio=20"])
    assert stage(config, "ocr").limits.max_aspect_ratio == 20.0
