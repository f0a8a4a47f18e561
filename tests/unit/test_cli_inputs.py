"""A bad input is one line naming it and why, exit 2, and nothing is created."""

from __future__ import annotations

import pyarrow as pa
import pytest

from engine.cli import main as cli
from tests.support.corpus_inputs import write_parquet


def refused(tmp_path, capsys, path) -> str:
    output = tmp_path / "out"
    assert cli(["run", "--input", str(path), "--output", str(output)]) == 2
    assert not output.exists()
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    return error.strip()


@pytest.mark.parametrize("values", [pa.array([1, 2]), pa.array([b"a", b"b"]), pa.array([["a"], ["b"]])])
def test_a_path_column_of_the_wrong_type(tmp_path, capsys, values) -> None:
    path = write_parquet(pa.table({"path": values}), tmp_path / "t.parquet")
    assert refused(tmp_path, capsys, path).startswith(f"fld-engine run: error: input {path}: column 'path' holds ")


def test_a_corrupt_parquet_input(tmp_path, capsys) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(b"garbage" * 10)
    assert f"input {path}: not a readable Parquet table" in refused(tmp_path, capsys, path)


def test_a_list_that_is_not_utf8(tmp_path, capsys) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(b"\xe9t\xe9.jpg\n")
    assert f"input {path}: a list of paths must be UTF-8 text" in refused(tmp_path, capsys, path)


def test_an_unknown_scheme(tmp_path, capsys) -> None:
    assert "input nosuch://x/y: " in refused(tmp_path, capsys, "nosuch://x/y")
