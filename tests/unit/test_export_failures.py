"""Failed exports clean up after themselves; a corrupt shard is one line naming it; output paths that
cannot be written are refused in one line before any work."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import OutputError
from engine.exports.coco import export_coco
from engine.store.manifest import require_manifest
from engine.store.reader import iter_records
from tests.support.audit_dataset import build_demo_dataset
from tests.support.unprivileged import run, run_unprivileged

FORMATS = ("coco", "yolo", "florence", "hf")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo_dataset(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def damaged(demo, tmp_path) -> tuple[Path, str, bytes]:
    """A copy of the demo dataset whose second (last) annotation shard is cut in half."""
    root = tmp_path / "dataset"
    shutil.copytree(demo.root, root)
    shard = require_manifest(root).shards[-1].path
    intact = (root / shard).read_bytes()
    (root / shard).write_bytes(intact[: len(intact) // 2])
    return root, shard, intact


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_truncated_shard_fails_the_export_in_one_line_and_leaves_no_output(damaged, fmt, tmp_path) -> None:
    root, shard, _ = damaged
    destination = tmp_path / "out" / fmt
    code, err = run(["export", str(root), "--format", fmt, "--to", str(destination), "--val-fraction", "0"])
    assert code == 2 and err.count("\n") == 1
    assert f"shard {shard} is unreadable" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_the_same_export_runs_once_the_shard_is_repaired(damaged, tmp_path) -> None:
    root, shard, intact = damaged
    args = ["export", str(root), "--format", "coco", "--to", str(tmp_path / "coco")]
    assert run(args)[0] == 2
    (root / shard).write_bytes(intact)
    assert run(args)[0] == 0 and (tmp_path / "coco" / "instances_train.json").is_file()


def test_a_failed_export_into_an_empty_folder_leaves_it_empty(damaged, tmp_path) -> None:
    root, _, _ = damaged
    (tmp_path / "coco").mkdir()
    assert run(["export", str(root), "--format", "coco", "--to", str(tmp_path / "coco")])[0] == 2
    assert list((tmp_path / "coco").iterdir()) == []


def test_an_interrupted_export_removes_its_parts(demo, tmp_path) -> None:
    def interrupted() -> Iterator:
        records = iter_records(demo.root)
        yield next(records)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_coco(interrupted(), tmp_path / "coco")
    assert not (tmp_path / "coco").exists()


def test_a_truncated_shard_fails_the_audit_in_one_line_without_a_report(damaged, tmp_path) -> None:
    root, shard, _ = damaged
    code, err = run(["audit", str(root), "--html", str(tmp_path / "report.html")])
    assert code == 2 and err.count("\n") == 1 and f"shard {shard} is unreadable" in err
    assert list(tmp_path.glob("report.html*")) == []
    code, err = run(["audit", str(root), "--review", "2", "--to", str(tmp_path / "review")])
    assert code == 2 and f"shard {shard} is unreadable" in err and not (tmp_path / "review").exists()


def test_an_export_library_call_refuses_a_used_folder(demo, tmp_path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="must be a new or empty folder"):
        export_coco(iter_records(demo.root), tmp_path / "used")
    assert (tmp_path / "used" / "keep.txt").read_text() == "mine"


# Output paths: the dataset folder given does not exist, so a refusal that names the output path
# shows the output was checked before anything was read.


def test_an_export_destination_that_is_a_file_is_refused_first(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    code, err = run(["export", str(tmp_path / "nothing"), "--format", "coco", "--to", str(tmp_path / "file")])
    message = "is a file; the export destination must be a new or empty folder"
    assert code == 2 and err == f"fld-engine export: error: {tmp_path / 'file'}: {message}\n"


@pytest.mark.parametrize(
    "command",
    [
        ["export", "--format", "hf", "--to", "{target}"],
        ["audit", "--html", "{target}"],
        ["audit", "--review", "2", "--to", "{target}"],
    ],
    ids=["export --to", "audit --html", "audit --to"],
)
def test_an_output_under_a_file_is_refused_first(command, tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "sub" / "out"
    args = [command[0], str(tmp_path / "nothing"), *(a.format(target=target) for a in command[1:])]
    code, err = run(args)
    assert code == 2 and err.count("\n") == 1
    assert f"{target}: {tmp_path / 'file'} is a file, so the " in err and "cannot be created under it" in err
    assert (tmp_path / "file").read_text() == "x"


def test_an_html_report_path_that_is_a_folder_is_refused_first(tmp_path) -> None:
    code, err = run(["audit", str(tmp_path / "nothing"), "--html", str(tmp_path)])
    assert code == 2 and f"{tmp_path}: is a folder; the HTML report must be a file" in err


def test_a_review_folder_that_is_a_file_is_refused_first(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    code, err = run(["audit", str(tmp_path / "nothing"), "--review", "2", "--to", str(tmp_path / "file")])
    assert code == 2 and "is a file; the review folder must be a new or empty folder" in err


@pytest.mark.parametrize(
    ("command", "what"),
    [
        (["export", "--format", "coco", "--to", "{target}"], "the export destination"),
        (["audit", "--html", "{target}.html"], "the HTML report"),
        (["audit", "--review", "2", "--to", "{target}"], "the review folder"),
    ],
    ids=["export --to", "audit --html", "audit --to"],
)
def test_an_output_in_a_read_only_folder_is_refused_first(command, what, read_only_folder) -> None:
    target = read_only_folder / "out"
    args = [command[0], str(read_only_folder / "nothing"), *(a.format(target=target) for a in command[1:])]
    code, err = run_unprivileged(args)
    assert code == 2 and err.count("\n") == 1
    assert f"{read_only_folder} is not writable, so {what} cannot be created there" in err
    assert list(read_only_folder.iterdir()) == []
