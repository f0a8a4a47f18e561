"""Run journals: the shards a run completed, so the next run picks up a killed run's work.

Layout (the same locally and in an object store, which cannot append)::

    _runs/<run_id>/run.json                   what the run was asked to do (config fingerprint, inputs, --full)
    _runs/<run_id>/shards/<folder>--<name>.json   one small file per completed shard, written after the shard
                                                  (with the image ids and the writing process: host, pid, Ray node)

A shard is written whole before its journal file, so a journaled shard is always whole; a shard
written but not journaled (killed in between) is simply redone. A journal file that cannot be read
is ignored. A run is finished once a published version names its run id; the others are
unfinished, and their journaled shards (checked against their recorded size) are offered to the
next run for carry-over (rows are keyed by content and stage fingerprints, so nothing is
duplicated). After a run publishes, the journals of unfinished runs are deleted with every file of
theirs that no version lists.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from engine.store.location import Location, Where, location
from engine.store.manifest import write_json
from engine.store.writer import ShardInfo

RUNS_DIR = "_runs"
RUN_FILE = "run.json"
SHARDS_DIR = "shards"
OUTPUT_FOLDERS = ("annotations", "quarantine", "tombstones", "probes")


@dataclass(frozen=True)
class UnfinishedRun:
    run_id: str
    meta: dict[str, Any]
    shards: list[ShardInfo]


class RunJournal:
    """The journal of the current run."""

    def __init__(self, root: Where, run_id: str, node: str | None = None) -> None:
        self.root, self.run_id, self.node = location(root), run_id, node
        self.folder = self.root / RUNS_DIR / run_id

    def start(self, meta: dict[str, Any]) -> None:
        write_json(self.folder / RUN_FILE, {"run_id": self.run_id, **meta})

    def record(self, shard: ShardInfo, table: pa.Table) -> None:
        """Journal one completed shard (call after it is written): one small file of its own."""
        writer = {"host": socket.gethostname(), "pid": os.getpid(), "node": self.node}
        entry = {"shard": shard.to_dict(), "image_ids": table.column("image_id").to_pylist(), "writer": writer}
        write_json(self.folder / SHARDS_DIR / f"{shard.path.replace('/', '--')}.json", entry)


def _journaled_shards(root: Location, records: list[Location]) -> list[ShardInfo]:
    """Shards of a run's journal files that exist whole (their size matches); unreadable records are skipped."""
    shards = []
    for record in records:
        try:
            shard = ShardInfo.from_dict(json.loads(record.read_bytes())["shard"])
            found = (root / shard.path).stat()
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, OSError):
            continue
        if found is not None and found.size == shard.bytes:
            shards.append(shard)
    return shards


def _run_ids(root: Location) -> list[str]:
    """The run ids that have a journal folder under ``_runs/``."""
    runs_dir = root / RUNS_DIR
    selector = pafs.FileSelector(runs_dir.path, recursive=False, allow_not_found=True)
    return sorted(info.base_name for info in runs_dir.filesystem.get_file_info(selector) if info.base_name)


def unfinished_runs(root: Where, published_run_ids: set[str]) -> list[UnfinishedRun]:
    """Runs with a journal that no published version names, oldest first."""
    root = location(root)
    runs = []
    for run_id in _run_ids(root):
        if run_id in published_run_ids:
            continue
        folder = root / RUNS_DIR / run_id
        try:
            meta = json.loads((folder / RUN_FILE).read_bytes())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            meta = {}
        records = [location(entry.uri) for entry in (folder / SHARDS_DIR).iter_files()]
        runs.append(UnfinishedRun(run_id, meta, _journaled_shards(root, sorted(records, key=lambda r: r.uri))))
    return runs


def _of_run(name: str, run_ids: list[str]) -> bool:
    """Whether a file name is one that a run in ``run_ids`` writes (``part-<run_id>-...`` or ``part-<run_id>.``)."""
    return any(name.startswith((f"part-{run_id}-", f"part-{run_id}.")) for run_id in run_ids)


def clean_up_runs(root: Where, published_run_ids: set[str], referenced: set[str]) -> list[str]:
    """After a publish: delete every run journal, and the files of unpublished runs that no version lists.

    Returns the deleted files (relative paths). Files of published runs are never deleted here.
    """
    root = location(root)
    run_ids = _run_ids(root)
    dead = [run_id for run_id in run_ids if run_id not in published_run_ids]
    deleted: list[str] = []
    for folder in OUTPUT_FOLDERS if dead else ():
        for entry in (root / folder).iter_files(recursive=False):
            target = location(entry.uri)
            relative = f"{folder}/{target.name}"
            if relative not in referenced and _of_run(target.name, dead):
                target.delete()
                deleted.append(relative)
    for run_id in run_ids:
        (root / RUNS_DIR / run_id).delete_tree()
    return sorted(deleted)
