"""The profile's curation section: typed defaults, and bad values failing with the key named."""

from __future__ import annotations

import pytest
import yaml

from engine.config.profile import parse_config
from engine.config.typed_config import ConfigError
from filters.curation.settings import CurationSettings, DedupSettings, GateSettings


def test_the_default_curation_groups_by_both_hashes_and_gates_tiny_images() -> None:
    curation = parse_config({}).curation
    assert curation == CurationSettings()
    assert curation.dedup.max_distances() == {"phash": 8, "dhash": 10}
    assert curation.gates == GateSettings(min_side=16)


def test_a_curation_section_is_read_into_typed_settings() -> None:
    text = """
curation:
  dedup: {enabled: true, hashes: [dhash], dhash_max_distance: 6, max_aspect_change: null}
  gates: {min_side: 32, max_aspect_ratio: 8, min_sharpness: 20, max_single_colour_fraction: 0.98}
"""
    curation = parse_config(yaml.safe_load(text)).curation
    assert curation.dedup == DedupSettings(hashes=("dhash",), dhash_max_distance=6, max_aspect_change=None)
    assert curation.gates == GateSettings(32, 8.0, 20.0, 0.98)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"dedup": {"phash_max_distance": 40}}, "curation.dedup: phash_max_distance must be between 0 and 31"),
        ({"dedup": {"dhash_max_distance": -1}}, "curation.dedup: dhash_max_distance must be between 0 and 31"),
        ({"dedup": {"phash_max_distance": 4.5}}, "curation.dedup.phash_max_distance: expected an integer"),
        ({"dedup": {"hashes": ["ahash"]}}, r"curation.dedup.hashes\[0\]: 'ahash' is not one of 'phash', 'dhash'"),
        ({"dedup": {"hashes": []}}, "curation.dedup: hashes must list at least one"),
        ({"dedup": {"hashes": ["phash", "phash"]}}, "curation.dedup: hashes names a hash twice"),
        ({"dedup": {"max_aspect_change": 1.5}}, "curation.dedup: max_aspect_change must be a fraction"),
        ({"dedup": {"enabled": "yes"}}, "curation.dedup.enabled: expected true or false"),
        ({"gates": {"min_side": 0}}, "curation.gates: min_side must be at least 1"),
        ({"gates": {"max_aspect_ratio": 0.5}}, "curation.gates: max_aspect_ratio must be at least 1"),
        ({"gates": {"min_sharpness": -3}}, "curation.gates: min_sharpness must be at least 0"),
        (
            {"gates": {"max_single_colour_fraction": 1.5}},
            r"curation.gates: max_single_colour_fraction must be in \(0, 1\]",
        ),
        ({"gates": {"min_sharpnes": 3}}, "curation.gates: unknown key 'min_sharpnes'"),
        ({"dedupe": {}}, "curation: unknown key 'dedupe'"),
    ],
)
def test_a_bad_curation_value_fails_naming_the_key(section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"curation": section})


def test_semantic_dedup_is_off_by_default_and_on_in_the_fld5b_profile() -> None:
    from engine.config.profile import load_config

    assert parse_config({}).curation.semantic.enabled is False
    semantic = load_config("fld5b").curation.semantic
    assert (semantic.enabled, semantic.model, semantic.min_cosine) == (True, "openai/clip-vit-large-patch14", 0.95)
    assert (semantic.pool_size, semantic.num_gpus) == (4, 0.25)  # one GPU's four embedding workers


def test_an_embedding_pool_larger_than_the_cluster_fails_before_it_waits_forever() -> None:
    from engine.execute.semantic_stage import check_pool_fits

    settings = parse_config({"curation": {"semantic": {"pool_size": 4, "num_gpus": 0.5}}}).curation.semantic
    check_pool_fits(settings, {"CPU": 8.0, "GPU": 2.0})
    with pytest.raises(ConfigError, match=r"pool of 4 needs 2 GPUs but Ray has 1; lower curation.semantic.pool_size"):
        check_pool_fits(settings, {"CPU": 8.0, "GPU": 1.0})
    with pytest.raises(ConfigError, match="needs 4 CPUs but Ray has 2"):
        check_pool_fits(settings, {"CPU": 2.0, "GPU": 2.0})


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"min_cosine": 1.0}, r"curation.semantic: min_cosine must be in \(0, 1\)"),
        ({"recall": 1.0}, r"curation.semantic: recall must be in \[0.5, 1\)"),
        ({"batch_size": 0}, "curation.semantic: batch_size must be at least 1"),
        ({"model": " "}, "curation.semantic: model must name a checkpoint"),
        ({"pool_size": 0}, "curation.semantic: pool_size must be at least 1"),
        ({"num_gpus": 1.5}, "curation.semantic: num_gpus must be 0, a fraction of one GPU or whole GPUs"),
        ({"min_cos": 0.9}, "curation.semantic: unknown key 'min_cos'"),
    ],
)
def test_a_bad_semantic_value_fails_naming_the_key(section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"curation": {"semantic": section}})


def test_models_lists_the_semantic_embedding_model_when_semantic_dedup_is_on(capsys, tmp_path) -> None:
    from engine.cli import main as cli

    missing = tmp_path / "no-clip"
    profile = tmp_path / "semantic.yaml"
    profile.write_text(
        yaml.safe_dump({"extends": "offline", "curation": {"semantic": {"enabled": True, "model": str(missing)}}})
    )
    assert cli(["models", "--config", str(profile)]) == 1
    printed = capsys.readouterr().out
    assert f"MISSING curation.semantic (clip): {missing}" in printed
    assert "3 of 4 specialists have their weights" in printed
