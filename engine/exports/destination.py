"""Where exports and reports are written: checked before any work, and removed again when an export fails.

A destination is a local path or an object-store prefix (``s3://bucket/exports/coco``). It is refused
in one line when it is a file, lies under a file, or cannot be written (a folder this process cannot
write, a missing bucket, an unreachable store). An export folder must be new or empty, which is what
lets a failed (or interrupted) export remove everything it wrote, so the same command can simply be
run again.

Exporters write into a local folder: the destination itself, or for an object store a temporary
local folder that is uploaded once the export has succeeded (so the local disk needs room for one
export; ``TMPDIR`` chooses where).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs

from engine.errors import OutputError
from engine.store.location import Location, Where, location


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


def check_output_folder(destination: Where, what: str = "the export destination") -> None:
    """Refuse, in one line, a folder output that is a file, under a file, read-only or not empty."""
    target = location(destination)
    if not target.is_local:
        target.check_writable_folder(what)
        if not target.is_empty_folder():
            raise OutputError(f"{target}: {what} must be a new or empty folder (prefix)")
        return
    path = Path(target.os_path)
    if not path.exists():
        _check_creatable(path, what)
        return
    if not path.is_dir():
        raise OutputError(f"{path}: is a file; {what} must be a new or empty folder")
    if any(path.iterdir()):
        raise OutputError(f"{path}: {what} must be a new or empty folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: {what} is not writable")


def check_output_file(destination: Where, what: str = "the report") -> None:
    """Refuse, in one line, a file output that is a folder, under a file or not writable (a file is replaced)."""
    target = location(destination)
    if not target.is_local:
        if target.info().type == pafs.FileType.Directory:
            raise OutputError(f"{target}: is a folder (prefix); {what} must be a file")
        target.parent.check_writable_folder(what)
        return
    path = Path(target.os_path)
    if not path.exists():
        _check_creatable(path, what)
        return
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; {what} must be a file")
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: {what} is not writable")


def write_text_atomically(destination: Where, text: str) -> None:
    """Write a text file whole or not at all (a temporary sibling renamed, or one object-store upload)."""
    location(destination).write_text(text)


@contextlib.contextmanager
def export_folder(destination: Where, what: str = "the export destination") -> Iterator[Path]:
    """Hold a new or empty ``destination`` for one export and yield the local folder to write into; if the
    export fails, remove what it wrote.

    Locally, folders created on the way to ``destination`` are removed too; an empty folder that existed
    before is kept, emptied. For an object store the export is written to a temporary local folder and
    uploaded when it succeeded; a failed upload deletes what it had uploaded.
    """
    target = location(destination)
    check_output_folder(target, what)
    if not target.is_local:
        with tempfile.TemporaryDirectory(prefix="fld-engine-export-") as staging:
            yield Path(staging)
            _upload(Path(staging), target)
        return
    path = Path(target.os_path)
    created = next((p for p in reversed((path, *path.parents)) if not p.exists()), None)
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        else:
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise


def _upload(staging: Path, target: Location) -> None:
    try:
        target.upload_tree(str(staging))
    except BaseException:
        target.delete_tree()
        raise
