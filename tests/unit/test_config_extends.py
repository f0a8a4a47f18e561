"""Profiles that extend others: mappings merged at any depth, lists replaced, cycles refused, the merge validated."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.config.merge import merge_mappings
from engine.config.profile import BUNDLED, load_config
from engine.config.typed_config import ConfigError

BASE = """
specialists:
  - {name: ocr, backend: rapidocr}
  - {name: haar, backend: haar}
filters:
  - {name: confidence, backend: confidence}
  - {name: nms, backend: nms}
writer: {rows_per_shard: 500, row_group_rows: 128}
refine:
  merge: {match_iou: 0.6, drop_after_disagreements: 3}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_an_extending_profile_overrides_only_the_nested_keys_it_names(tmp_path) -> None:
    write(tmp_path / "base.yaml", BASE)
    child = write(
        tmp_path / "child.yaml", "extends: base.yaml\nrefine: {merge: {match_iou: 0.7}}\nwriter: {rows_per_shard: 10}\n"
    )
    config = load_config(child)
    assert (config.refine.merge.match_iou, config.refine.merge.drop_after_disagreements) == (0.7, 3)
    assert (config.writer.rows_per_shard, config.writer.row_group_rows) == (10, 128)
    assert [s.name for s in config.specialists] == ["ocr", "haar"] and config.profile == "child"


def test_a_list_in_the_extending_profile_replaces_the_base_list(tmp_path) -> None:
    write(tmp_path / "base.yaml", BASE)
    child = write(tmp_path / "child.yaml", "extends: base.yaml\nspecialists: [{name: faces, backend: haar}]\n")
    config = load_config(child)
    assert [(s.name, s.backend) for s in config.specialists] == [("faces", "haar")]
    assert [s.name for s in config.filters] == ["confidence", "nms"]


def test_extending_in_a_cycle_is_refused_naming_the_chain(tmp_path) -> None:
    first = write(tmp_path / "first.yaml", "extends: second.yaml\n")
    write(tmp_path / "second.yaml", "extends: first.yaml\nwriter: {rows_per_shard: 3}\n")
    with pytest.raises(ConfigError, match=r"cycle: \S*first\.yaml -> \S*second\.yaml -> \S*first\.yaml$"):
        load_config(first)


def test_an_unknown_key_in_the_merged_profile_is_named(tmp_path) -> None:
    child = write(tmp_path / "child.yaml", "extends: offline\nwriter: {rows_per_shrd: 5}\n")
    with pytest.raises(ConfigError, match=r"^writer: unknown key 'rows_per_shrd' \(known keys: "):
        load_config(child)


def test_a_file_extends_a_bundled_profile_by_name(tmp_path) -> None:
    child = write(tmp_path / "small.yaml", "extends: offline\nray: {num_cpus: 3}\n")
    config, offline = load_config(child), load_config("offline")
    assert config.ray.num_cpus == 3 and config.profile == "small"
    assert (config.specialists, config.filters) == (offline.specialists, offline.filters)


def test_a_relative_extends_path_is_resolved_from_the_extending_file(tmp_path, monkeypatch) -> None:
    write(tmp_path / "shared" / "base.yaml", BASE)
    child = write(tmp_path / "profiles" / "child.yaml", "extends: ../shared/base.yaml\n")
    monkeypatch.chdir(write(tmp_path / "elsewhere" / "x.txt", "").parent)
    assert load_config(child).writer.rows_per_shard == 500


def test_extending_what_does_not_exist_names_the_profile_and_the_reference(tmp_path) -> None:
    child = write(tmp_path / "child.yaml", "extends: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"child\.yaml: extends: file 'missing\.yaml' does not exist"):
        load_config(child)
    write(child, "extends: ofline\n")
    with pytest.raises(
        ConfigError, match=r"extends: no profile file or bundled profile named 'ofline' \(bundled: .*offline"
    ):
        load_config(child)


def test_fld5b_runs_offlines_filter_chain_first_and_keeps_its_own_ordered_stages() -> None:
    fld5b, offline = load_config("fld5b"), load_config("offline")
    written = yaml.safe_load((BUNDLED / "fld5b.yaml").read_text())
    assert written["extends"] == "offline" and "filters" not in written and "specialists" not in written
    # offline's five filters, as configured there, are fld5b's first filters (phase 2, before region text).
    assert fld5b.filters[:5] == offline.filters and fld5b.writer == offline.writer
    assert fld5b.specialists[0].backend == "florence2" and fld5b.specialists != offline.specialists


def test_a_stages_list_replaces_the_base_specialists_and_filters(tmp_path) -> None:
    write(tmp_path / "base.yaml", BASE)
    child = write(
        tmp_path / "child.yaml",
        "extends: base.yaml\nstages:\n  - {name: ocr, backend: rapidocr}\n  - {name: nms, backend: nms}\n"
        "  - {name: haar, backend: haar}\n",
    )
    config = load_config(child)
    assert [s.name for s in config.stages] == ["ocr", "nms", "haar"] and config.writer.rows_per_shard == 500
    grandchild = write(tmp_path / "grandchild.yaml", "extends: child.yaml\nfilters: [{name: nms, backend: nms}]\n")
    assert [s.name for s in load_config(grandchild).stages] == ["nms"]  # the sections replace the stages list


def test_merging_mappings_changes_neither_input() -> None:
    base = {"writer": {"rows_per_shard": 1, "row_group_rows": 2}, "filters": [{"name": "nms"}]}
    override = {"writer": {"rows_per_shard": 5}, "ray": None}
    merged = merge_mappings(base, override)
    assert merged == {"writer": {"rows_per_shard": 5, "row_group_rows": 2}, "filters": [{"name": "nms"}], "ray": None}
    merged["filters"][0]["name"] = "changed"
    assert base == {"writer": {"rows_per_shard": 1, "row_group_rows": 2}, "filters": [{"name": "nms"}]}
    assert override == {"writer": {"rows_per_shard": 5}, "ray": None}
