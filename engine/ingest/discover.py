"""Finding input files: folders (recursively, by image extension), text lists of paths, Parquet tables of paths."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pyarrow.parquet as pq


class InputError(ValueError):
    """An input path cannot be read as a folder, a list of paths or a Parquet table."""


def discover(inputs: Sequence[str], extensions: Sequence[str], path_column: str = "path") -> list[str]:
    """Expand inputs (folders, recursively; ``.txt`` lists of paths; Parquet tables with a path column).

    Folders contribute files with an image extension; listed paths are taken as given, so a bad
    listed file is quarantined rather than silently skipped. The result is sorted and unique.
    """
    suffixes = {e.lower() for e in extensions}
    found: set[str] = set()
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            for root, _, names in os.walk(path, followlinks=True):
                found.update(str(Path(root, n).resolve()) for n in names if Path(n).suffix.lower() in suffixes)
        elif path.suffix.lower() == ".parquet" and path.is_file():
            table = pq.read_table(path)
            if path_column not in table.column_names:
                raise InputError(
                    f"input {item}: Parquet table has no {path_column!r} column (columns: {table.column_names})"
                )
            found.update(_resolve(p, path.parent) for p in table.column(path_column).to_pylist() if p)
        elif path.suffix.lower() in {".txt", ".lst"} and path.is_file():
            lines = path.read_text().splitlines()
            found.update(
                _resolve(line.strip(), path.parent) for line in lines if line.strip() and not line.startswith("#")
            )
        elif path.is_file():
            found.add(str(path.resolve()))
        else:
            raise InputError(f"input {item}: no such file or folder")
    return sorted(found)


def _resolve(entry: str, base: Path) -> str:
    path = Path(entry).expanduser()
    return str((path if path.is_absolute() else base / path).resolve())
