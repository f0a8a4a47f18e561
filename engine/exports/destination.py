"""Where exports and reports are written: checked before any work, and removed again when an export fails.

A destination is refused in one line when it is a file, lies under a file, or would be created in a
folder this process cannot write. An export folder must be new or empty, which is what lets a failed
(or interrupted) export remove everything it wrote, so the same command can simply be run again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from engine.errors import OutputError


def _nearest_existing(path: Path) -> Path:
    """``path`` itself if it exists, else its closest existing ancestor (a file, when ``path`` is under one)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def _check_creatable(path: Path, what: str) -> None:
    """Refuse ``path`` (which does not exist) when it is under a file or its closest folder is not writable."""
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise OutputError(f"{path}: {existing} is a file, so {what} cannot be created under it")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: {existing} is not writable, so {what} cannot be created there")


def check_output_folder(path: Path, what: str = "the export destination") -> None:
    """Refuse, in one line, a folder output that is a file, under a file, read-only or not empty."""
    if not path.exists():
        _check_creatable(path, what)
        return
    if not path.is_dir():
        raise OutputError(f"{path}: is a file; {what} must be a new or empty folder")
    if any(path.iterdir()):
        raise OutputError(f"{path}: {what} must be a new or empty folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: {what} is not writable")


def check_output_file(path: Path, what: str = "the report") -> None:
    """Refuse, in one line, a file output that is a folder, under a file or not writable (a file is replaced)."""
    if not path.exists():
        _check_creatable(path, what)
        return
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; {what} must be a file")
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: {what} is not writable")


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``path`` through a temporary sibling, so a failure never leaves a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


@contextlib.contextmanager
def export_folder(destination: Path, what: str = "the export destination") -> Iterator[Path]:
    """Hold a new or empty ``destination`` for one export; if the export fails, remove what it wrote.

    Folders created on the way to ``destination`` are removed too; an empty folder that existed
    before is kept, emptied.
    """
    check_output_folder(destination, what)
    created = next((p for p in reversed((destination, *destination.parents)) if not p.exists()), None)
    destination.mkdir(parents=True, exist_ok=True)
    try:
        yield destination
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        else:
            for child in destination.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise
