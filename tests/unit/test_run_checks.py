"""``fld-engine run`` refuses a bad output or a bad input in one line, before any work, leaving nothing."""

from __future__ import annotations

import pytest

from tests.support.unprivileged import run, run_unprivileged


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not really a png")
    return folder


def test_an_output_that_is_a_file_is_refused(inputs, tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    code, err = run(["run", "--input", str(inputs), "--output", str(tmp_path / "file")])
    assert (code, err) == (2, f"fld-engine run: error: output {tmp_path / 'file'} is a file, not a folder\n")


def test_an_output_under_a_file_is_refused(inputs, tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    code, err = run(["run", "--input", str(inputs), "--output", str(tmp_path / "file" / "out")])
    assert code == 2 and err.count("\n") == 1
    assert f"output {tmp_path / 'file' / 'out'} is under a file ({tmp_path / 'file'}), not a folder" in err


def test_an_output_in_a_read_only_folder_is_refused(inputs, read_only_folder) -> None:
    code, err = run_unprivileged(["run", "--input", str(inputs), "--output", str(read_only_folder / "out")])
    assert code == 2 and err.count("\n") == 1
    assert f"output {read_only_folder / 'out'} is not writable ({read_only_folder} is read-only)" in err
    assert list(read_only_folder.iterdir()) == []


def test_a_bad_input_leaves_no_output_folder(tmp_path) -> None:
    code, err = run(["run", "--input", str(tmp_path / "missing"), "--output", str(tmp_path / "out")])
    assert code == 2 and err.count("\n") == 1 and "no such file or folder" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("s3:///out", "s3:///out: missing bucket name (expected s3://BUCKET/prefix)"),
        ("nosuch://bucket/out", "nosuch://bucket/out: unknown scheme 'nosuch'"),
    ],
    ids=["no bucket", "unknown scheme"],
)
def test_an_output_uri_that_cannot_be_parsed_is_refused(inputs, tmp_path, monkeypatch, output, message) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = run(["run", "--input", str(inputs), "--output", output])
    assert code == 2 and err.count("\n") == 1 and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs"]
