"""Scheduled refresh through local Ray with cheap test stages: only new or changed work runs again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from engine.cli import main as cli
from engine.config.profile import parse_config
from engine.run import RunRequest, RunResult, run_pipeline
from engine.store.manifest import list_versions, require_manifest
from engine.store.reader import read_version
from schemas.records import ImageRecord
from tests.support import refresh_stages
from tests.support.refresh_stages import CONSUMER, FILTER, SPECIALIST, processed, write_images

IMAGES = 6


def profile(log_dir: Path, min_score: float = 0.5, caption_prefix: str = "mean color") -> dict:
    return {
        "specialists": [
            {
                "name": "halves",
                "backend": SPECIALIST,
                "resources": {"batch_size": 4},
                "options": {"log_dir": str(log_dir), "caption_prefix": caption_prefix},
            }
        ],
        "filters": [
            {"name": "min_score", "backend": FILTER, "options": {"min_score": min_score, "log_dir": str(log_dir)}}
        ],
        "writer": {"rows_per_shard": 4, "row_group_rows": 2},
        "ray": {"num_cpus": 2},
    }


@pytest.fixture(scope="module")
def ray_local():
    with refresh_stages.local_ray_with_stages():
        yield


def refresh(
    inputs: Path, output: Path, log_dir: Path, full: bool = False, always_publish: bool = False, **settings
) -> RunResult:
    config = parse_config(profile(log_dir, **settings))
    request = RunRequest((str(inputs),), output, config, full=full, progress_bars=False, always_publish=always_publish)
    return run_pipeline(request, progress=lambda _: None)


def rows_by_id(output: Path, version: int | None = None) -> dict[str, ImageRecord]:
    return {row["image_id"]: ImageRecord.from_row(row) for row in read_version(output, version).to_pylist()}


@pytest.fixture(scope="module")
def store(ray_local, tmp_path_factory) -> tuple[Path, Path, Path, RunResult]:
    """A first version of six images: (inputs, output, log_dir, result)."""
    base = tmp_path_factory.mktemp("store")
    inputs, output, logs = base / "inputs", base / "out", base / "logs"
    logs.mkdir()
    write_images(inputs, IMAGES)
    return inputs, output, logs, refresh(inputs, output, logs)


@pytest.fixture
def copy_of(store, tmp_path) -> tuple[Path, Path, Path]:
    """The store's inputs (same paths) with a private copy of its output directory."""
    inputs, output, logs, _ = store
    shutil.copytree(output, tmp_path / "out")
    return inputs, tmp_path / "out", logs


def test_first_run_annotates_every_image_once(store) -> None:
    _, output, logs, result = store
    assert result.annotated == IMAGES and result.carried == 0
    assert sorted(processed(logs, "halves")) == sorted(rows_by_id(output))
    assert len(processed(logs, "min_score")) == IMAGES


def test_rerun_with_nothing_new_runs_no_stage_and_keeps_the_rows(copy_of) -> None:
    inputs, output, logs = copy_of
    before = (processed(logs, "halves"), processed(logs, "min_score"))
    result = refresh(inputs, output, logs, always_publish=True)
    assert (processed(logs, "halves"), processed(logs, "min_score")) == before
    assert (result.annotated, result.refiltered, result.carried, result.probe_cached) == (0, 0, IMAGES, IMAGES)
    assert result.manifest.version == 2 and result.manifest.extra["probe_hashed"] == 0
    assert read_version(output, 2).sort_by("image_id").equals(read_version(output, 1).sort_by("image_id"))


def test_a_refresh_with_nothing_new_publishes_no_version(copy_of, capsys) -> None:
    inputs, output, logs = copy_of
    latest = (output / "manifest.json").read_bytes()
    result = refresh(inputs, output, logs)
    assert (result.published, result.manifest.version, result.annotated, result.carried) == (False, 1, 0, IMAGES)
    assert list_versions(output) == [1] and (output / "manifest.json").read_bytes() == latest
    assert not list((output / "_runs").iterdir()) and not (output / ".lock").exists()
    written = {p.relative_to(output).as_posix() for p in output.glob("*/*.parquet")}
    assert written == set(require_manifest(output).files())  # no side table written for nothing

    profile_file = output.parent / "profile.yaml"
    profile_file.write_text(yaml.safe_dump(profile(logs)))
    args = ["run", "--input", str(inputs), "--output", str(output), "--config", str(profile_file)]
    capsys.readouterr()
    assert cli(args) == 0
    assert capsys.readouterr().out == f"unchanged: v1 ({IMAGES} images, nothing new since it was published)\n"
    assert cli([*args, "--always-publish"]) == 0
    assert "version 2 of" in capsys.readouterr().out and list_versions(output) == [1, 2]
    assert read_version(output, 2).sort_by("image_id").equals(read_version(output, 1).sort_by("image_id"))


def test_adding_five_images_processes_exactly_those_five(store, tmp_path) -> None:
    inputs, output, logs, _ = store
    shutil.copytree(inputs, tmp_path / "inputs")  # copy2 keeps the old mtimes
    shutil.copytree(output, tmp_path / "out")
    added = write_images(tmp_path / "inputs", 5, start=IMAGES)
    before = len(processed(logs, "halves"))
    result = refresh(tmp_path / "inputs", tmp_path / "out", logs)
    new_ids = set(rows_by_id(tmp_path / "out")) - set(rows_by_id(output))
    assert len(new_ids) == 5 and result.annotated == 5 and result.carried == IMAGES
    assert sorted(processed(logs, "halves")[before:]) == sorted(new_ids)
    assert {r.source_uri for i, r in rows_by_id(tmp_path / "out").items() if i in new_ids} == {str(p) for p in added}


def test_changing_a_filter_threshold_reruns_only_the_filters(copy_of) -> None:
    inputs, output, logs = copy_of
    specialist_before, filter_before = len(processed(logs, "halves")), len(processed(logs, "min_score"))
    result = refresh(inputs, output, logs, min_score=0.3)
    assert len(processed(logs, "halves")) == specialist_before
    assert len(processed(logs, "min_score")) == filter_before + IMAGES
    assert (result.annotated, result.refiltered, result.carried) == (0, IMAGES, 0)
    old, new = rows_by_id(output, 1), rows_by_id(output, 2)
    for image_id, record in new.items():
        kept = {r.id: r.score for r in record.regions}
        dropped = {d.annotation_id: d.value for d in record.dropped}
        assert all(score >= 0.3 for score in kept.values()) and all(value < 0.3 for value in dropped.values())
        assert kept.keys() | dropped.keys() == {r.id for r in old[image_id].regions} | {
            d.annotation_id for d in old[image_id].dropped
        }
        assert record.texts == old[image_id].texts
        assert all(d.threshold == 0.3 for d in record.dropped)


def test_changing_a_specialist_reruns_it_on_every_image(copy_of) -> None:
    inputs, output, logs = copy_of
    before = len(processed(logs, "halves"))
    result = refresh(inputs, output, logs, caption_prefix="average color")
    assert (result.annotated, result.reannotated, result.carried) == (IMAGES, IMAGES, 0)
    assert len(processed(logs, "halves")) == before + IMAGES
    texts = [t.text for r in rows_by_id(output).values() for t in r.texts]
    assert len(texts) == IMAGES and all(t.startswith("average color ") for t in texts)


def test_full_recomputes_every_image(copy_of) -> None:
    inputs, output, logs = copy_of
    before = len(processed(logs, "halves"))
    result = refresh(inputs, output, logs, full=True)
    assert (result.annotated, result.carried, result.probe_cached, result.tombstoned) == (IMAGES, 0, 0, 0)
    assert len(processed(logs, "halves")) == before + IMAGES and result.manifest.parent == 1
    assert read_version(output, 2).sort_by("image_id").equals(read_version(output, 1).sort_by("image_id"))


def test_removed_and_rewritten_sources_are_tombstoned(store, tmp_path) -> None:
    _, _, logs, _ = store
    inputs, output = tmp_path / "inputs", tmp_path / "out"
    write_images(inputs, 4)
    refresh(inputs, output, logs)
    old = rows_by_id(output)
    by_path = {r.source_uri: i for i, r in old.items()}
    (inputs / "img_000.png").unlink()
    shutil.copy2(write_images(tmp_path / "scratch", 1, start=99)[0], inputs / "img_001.png")
    result = refresh(inputs, output, logs)
    assert (result.annotated, result.carried, result.tombstoned) == (1, 2, 2)
    new = rows_by_id(output)
    tombstones = pq.read_table(output / result.manifest.tombstones[0].path).to_pylist()
    reasons = {row["image_id"]: (row["reason"], row["replaced_by"]) for row in tombstones}
    removed_id, changed_id = by_path[str(inputs / "img_000.png")], by_path[str(inputs / "img_001.png")]
    new_id = next(i for i in new if i not in old)
    assert reasons == {removed_id: ("source_removed", None), changed_id: ("content_changed", new_id)}
    assert new[new_id].source_uri == str(inputs / "img_001.png") and len(new) == 3


def test_versions_and_diff_report_the_change(copy_of, capsys) -> None:
    inputs, output, logs = copy_of
    refresh(inputs, output, logs, min_score=0.3)
    capsys.readouterr()
    assert cli(["versions", str(output)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[1].split()[:3] == ["1", lines[1].split()[1], str(IMAGES)]
    assert cli(["diff", str(output), "--from", "1", "--to", "2"]) == 0
    printed = capsys.readouterr().out
    assert "stages changed: min_score" in printed
    assert "added               0" in printed and "removed             0" in printed
    reannotated = sum(1 for i, r in rows_by_id(output, 2).items() if r != rows_by_id(output, 1)[i])
    assert f"re-annotated {reannotated:>8}" in printed and reannotated > 0
    assert "dropped.total" in printed


def test_inspect_reads_an_old_version(copy_of, capsys) -> None:
    inputs, output, logs = copy_of
    refresh(inputs, output, logs, min_score=0.9)
    capsys.readouterr()
    assert cli(["inspect", str(output), "--version", "1"]) == 0
    assert "version 1 " in capsys.readouterr().out


def test_inspect_reports_a_missing_shard_in_one_line(copy_of, capsys) -> None:
    _, output, _ = copy_of
    shard = read_manifest_shard(output)
    (output / shard).unlink()
    assert cli(["inspect", str(output)]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and f"shard {shard} is missing" in error


def test_inspect_reports_a_corrupt_shard_in_one_line(copy_of, capsys) -> None:
    _, output, _ = copy_of
    shard = read_manifest_shard(output)
    (output / shard).write_bytes(b"PAR1 this is not parquet")
    assert cli(["inspect", str(output)]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and f"shard {shard} is unreadable" in error


def read_manifest_shard(output: Path) -> str:
    from engine.store.manifest import require_manifest

    return require_manifest(output).shards[0].path


def ordered_profile(log_dir: Path, min_score: float = 0.5, final_min: float = 0.0) -> dict:
    """Boxes, a filter, a specialist that labels the kept boxes, a final filter: the paper's order in small."""
    logs = str(log_dir)
    return {
        "stages": [
            {"name": "halves", "backend": SPECIALIST, "resources": {"batch_size": 4}, "options": {"log_dir": logs}},
            {"name": "min_score", "backend": FILTER, "options": {"min_score": min_score, "log_dir": logs}},
            {"name": "labels", "backend": CONSUMER, "options": {"log_dir": logs}},
            {"name": "final_min", "backend": FILTER, "options": {"min_score": final_min, "log_dir": logs}},
        ],
        "writer": {"rows_per_shard": 4, "row_group_rows": 2},
        "ray": {"num_cpus": 2},
    }


def ordered_refresh(inputs: Path, output: Path, log_dir: Path, full: bool = False, **settings) -> RunResult:
    request = RunRequest(
        (str(inputs),), output, parse_config(ordered_profile(log_dir, **settings)), full=full, progress_bars=False
    )
    return run_pipeline(request, progress=lambda _: None)


def comparable(output: Path) -> dict[str, tuple]:
    """What a row holds, without the order of its lists."""
    return {
        image_id: (
            sorted(r.id for r in record.regions),
            sorted((d.annotation_id, d.stage, d.rule) for d in record.dropped),
            record.stages,
        )
        for image_id, record in rows_by_id(output).items()
    }


@pytest.fixture
def ordered_store(ray_local, tmp_path) -> tuple[Path, Path, Path]:
    inputs, output, logs = tmp_path / "inputs", tmp_path / "out", tmp_path / "logs"
    logs.mkdir()
    write_images(inputs, IMAGES)
    ordered_refresh(inputs, output, logs)
    return inputs, output, logs


def test_a_changed_filter_before_a_specialist_reruns_that_specialist_and_matches_a_full_run(
    ordered_store, tmp_path
) -> None:
    inputs, output, logs = ordered_store
    halves, labels = len(processed(logs, "halves")), len(processed(logs, "labels"))
    labelled = sum(1 for r in rows_by_id(output).values() for g in r.regions if g.kind == "region_caption")
    result = ordered_refresh(inputs, output, logs, min_score=0.3)
    assert (result.reannotated, result.refiltered, result.carried) == (IMAGES, 0, 0)
    assert len(processed(logs, "halves")) == halves and len(processed(logs, "labels")) == labels + IMAGES
    relabelled = sum(1 for r in rows_by_id(output).values() for g in r.regions if g.kind == "region_caption")
    assert relabelled > labelled  # boxes scored 0.3-0.5 are kept now, and labelled
    ordered_refresh(inputs, tmp_path / "full", logs, full=True, min_score=0.3)
    assert comparable(output) == comparable(tmp_path / "full")


def test_a_changed_final_filter_only_refilters(ordered_store, tmp_path) -> None:
    inputs, output, logs = ordered_store
    halves, labels = len(processed(logs, "halves")), len(processed(logs, "labels"))
    result = ordered_refresh(inputs, output, logs, final_min=0.6)
    assert (result.reannotated, result.refiltered, result.carried) == (0, IMAGES, 0)
    assert (len(processed(logs, "halves")), len(processed(logs, "labels"))) == (halves, labels)
    rows = rows_by_id(output).values()
    assert all(d.stage in {"min_score", "final_min"} for r in rows for d in r.dropped)
    assert all(g.score >= 0.6 for r in rows for g in r.regions)
    ordered_refresh(inputs, tmp_path / "full", logs, full=True, final_min=0.6)
    assert comparable(output) == comparable(tmp_path / "full")


def test_inspect_says_which_paper_measures_the_version_cannot_give_and_why(store, capsys) -> None:
    _, output, _, _ = store
    assert cli(["inspect", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "cannot be computed for this version:" in printed
    assert f"none of the {IMAGES} brief texts was analysed (no spacy_text filter ran)" in printed
    assert (
        "detailed: avg tokens, grounded regions per text," in printed and "no detailed texts in this version" in printed
    )


# -- a version never shrinks by accident ---------------------------------------------------------------


def refresh_inputs(inputs: list[Path], output: Path, log_dir: Path, **request) -> RunResult:
    """A run over several inputs, with request options (``limit``, ``prune``)."""
    config = parse_config(profile(log_dir))
    run = RunRequest(tuple(map(str, inputs)), output, config, progress_bars=False, **request)
    return run_pipeline(run, progress=lambda _: None)


def test_an_input_left_out_keeps_its_images_and_prune_removes_them(store, tmp_path) -> None:
    _, _, logs, _ = store
    first, second, output = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    write_images(first, 3)
    write_images(second, 2, start=3)
    refresh_inputs([first, second], output, logs)
    before = len(processed(logs, "halves"))
    # The second folder is not given (an unmounted disk, a forgotten argument): nothing is removed.
    result = refresh_inputs([first], output, logs)
    assert (result.annotated, result.carried, result.tombstoned, result.kept_unlisted) == (0, 5, 0, 2)
    assert len(read_version(output)) == 5 and len(processed(logs, "halves")) == before
    pruned = refresh_inputs([first], output, logs, prune=True)
    assert (pruned.carried, pruned.tombstoned, pruned.kept_unlisted) == (3, 2, 0)
    reasons = {row["reason"] for row in pq.read_table(output / pruned.manifest.tombstones[0].path).to_pylist()}
    assert reasons == {"source_removed"} and len(read_version(output)) == 3


def test_a_file_missing_from_a_listed_folder_is_removed_and_others_stay(store, tmp_path) -> None:
    _, _, logs, _ = store
    first, second, output = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    write_images(first, 3)
    write_images(second, 2, start=3)
    refresh_inputs([first, second], output, logs)
    (first / "img_000.png").unlink()
    result = refresh_inputs([first], output, logs)
    assert (result.tombstoned, result.kept_unlisted, len(read_version(output))) == (1, 2, 4)


def test_limit_annotates_a_subset_and_keeps_everything_else(store, tmp_path) -> None:
    _, _, logs, _ = store
    inputs, output = tmp_path / "in", tmp_path / "out"
    write_images(inputs, 6, start=20)
    first = refresh_inputs([inputs], output, logs, limit=2)
    assert (first.annotated, len(read_version(output))) == (2, 2)
    second = refresh_inputs([inputs], output, logs, limit=3)
    assert (second.annotated, second.carried, second.tombstoned) == (3, 2, 0)
    assert len(read_version(output)) == 5
    rest = refresh_inputs([inputs], output, logs)
    assert (rest.annotated, rest.carried, len(read_version(output))) == (1, 5, 6)


def test_an_image_back_after_a_gap_is_carried_from_an_older_version(store, tmp_path) -> None:
    _, _, logs, _ = store
    first, second, output = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    write_images(first, 2, start=40)
    write_images(second, 2, start=42)
    refresh_inputs([first, second], output, logs)
    refresh_inputs([first], output, logs, prune=True)  # v2: the second folder's images leave
    assert len(read_version(output)) == 2
    before = len(processed(logs, "halves"))
    back = refresh_inputs([first, second], output, logs)  # v3: they are back, their rows come from v1
    assert (back.annotated, back.carried, len(read_version(output))) == (0, 4, 4)
    assert len(processed(logs, "halves")) == before
    assert rows_by_id(output, 3) == rows_by_id(output, 1)


def test_a_missing_input_root_is_an_error_and_the_latest_version_stays(copy_of, capsys) -> None:
    inputs, output, _ = copy_of
    before = read_version(output)
    code = cli(["run", "--input", str(inputs), str(inputs.parent / "unmounted"), "--output", str(output), "--quiet"])
    assert code == 2
    assert f"input {inputs.parent / 'unmounted'}: no such file or folder" in capsys.readouterr().err
    assert sorted(p.name for p in (output / "versions").iterdir()) == ["v000001.json"]
    assert read_version(output).equals(before)
