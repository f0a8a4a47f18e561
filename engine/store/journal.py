"""Run journals: the shards a run completed, so the next run picks up a killed run's work.

Layout::

    _runs/<run_id>/run.json        what the run was asked to do (config fingerprint, inputs, --full)
    _runs/<run_id>/journal.jsonl   one line per completed shard, appended after the shard's rename

A shard is renamed into place before its line is appended, so a journaled shard is always whole;
a shard renamed but not journaled (killed in between) is simply redone. A torn last line (killed
mid-append) is ignored. A run is finished once a published version names its run id; the others
are unfinished, and their journaled shards are offered to the next run for carry-over (rows are
keyed by content and stage fingerprints, so nothing is duplicated). After a run publishes, the
journals of unfinished runs are deleted with every file of theirs that no version lists.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from engine.store.manifest import write_json_atomically
from engine.store.writer import ShardInfo

RUNS_DIR = "_runs"
RUN_FILE = "run.json"
JOURNAL_FILE = "journal.jsonl"
OUTPUT_FOLDERS = ("annotations", "quarantine", "tombstones", "probes")


@dataclass(frozen=True)
class UnfinishedRun:
    run_id: str
    meta: dict[str, Any]
    shards: list[ShardInfo]


class RunJournal:
    """The journal of the current run."""

    def __init__(self, root: Path, run_id: str) -> None:
        self.root, self.run_id = root, run_id
        self.folder = root / RUNS_DIR / run_id

    def start(self, meta: dict[str, Any]) -> None:
        write_json_atomically(self.folder / RUN_FILE, {"run_id": self.run_id, **meta})

    def record(self, shard: ShardInfo, table: pa.Table) -> None:
        """Append one completed shard (call after its rename); one write, fsynced."""
        line = json.dumps({"shard": shard.to_dict(), "image_ids": table.column("image_id").to_pylist()}) + "\n"
        fd = os.open(self.folder / JOURNAL_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)


def _journaled_shards(root: Path, path: Path) -> list[ShardInfo]:
    """Shards listed in a journal that exist whole (their row count matches); torn lines are skipped."""
    shards = []
    lines = path.read_text().splitlines() if path.exists() else []
    for line in lines:
        try:
            shard = ShardInfo.from_dict(json.loads(line)["shard"])
            rows = pq.ParquetFile(root / shard.path).metadata.num_rows
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, OSError, pa.ArrowInvalid):
            continue
        if rows == shard.rows:
            shards.append(shard)
    return shards


def unfinished_runs(root: Path, published_run_ids: set[str]) -> list[UnfinishedRun]:
    """Runs with a journal that no published version names, oldest first."""
    folder = root / RUNS_DIR
    runs = []
    for run_dir in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not run_dir.is_dir() or run_dir.name in published_run_ids:
            continue
        try:
            meta = json.loads((run_dir / RUN_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            meta = {}
        runs.append(UnfinishedRun(run_dir.name, meta, _journaled_shards(root, run_dir / JOURNAL_FILE)))
    return runs


def clean_up_runs(root: Path, published_run_ids: set[str], referenced: set[str]) -> list[str]:
    """After a publish: delete every run journal, and the files of unpublished runs that no version lists.

    Returns the deleted files (relative paths). Files of published runs are never deleted here.
    """
    folder = root / RUNS_DIR
    deleted: list[str] = []
    for run_dir in sorted(folder.iterdir()) if folder.is_dir() else []:
        run_id = run_dir.name
        if run_id not in published_run_ids:
            for sub in OUTPUT_FOLDERS:
                for path in sorted((root / sub).glob(f"part-{run_id}*")):
                    relative = f"{sub}/{path.name}"
                    if relative not in referenced:
                        path.unlink(missing_ok=True)
                        deleted.append(relative)
        shutil.rmtree(run_dir, ignore_errors=True)
    return deleted
