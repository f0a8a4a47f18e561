"""Skipping the re-hash of unchanged files: the previous version's (path, size, change key) -> probe result.

Each version lists a probe index (``probes/*.parquet``) with every input file's size, change key and
what probing it found (content id and image facts, or the quarantine reason). The change key is the
mtime for local files and the ETag for objects in a store (an object's mtime says when it was
uploaded, not whether its bytes changed). The next run stats each input and reuses the entry when
size and change key are unchanged, instead of reading, hashing and decoding the file again. As in
git's index, a local entry whose mtime was within ``RACY_NS`` of the moment it was checked is not
trusted (the file may have changed again within the clock's resolution). The cache is used only
when the ingest limits that decide quarantine are unchanged; ``--full`` never uses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.ingest.probe import ProbedFile, file_entry, probed_from_row
from engine.store.location import Entry, Where
from engine.store.manifest import Manifest
from engine.store.reader import read_shard

RACY_NS = 2_000_000_000


@dataclass
class CacheSplit:
    """Probe results reused from the cache (with their index rows), and the files still to probe."""

    hits: list[ProbedFile]
    hit_rows: list[dict[str, Any]]
    misses: list[str]


def load_probe_cache(root: Where, previous: Manifest | None, ingest_key: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """source_uri -> index row from the previous version, if its ingest limits equal ``ingest_key``."""
    if previous is None or previous.probe_index is None or previous.extra.get("ingest") != ingest_key:
        return {}
    table = read_shard(root, previous.probe_index)
    return {row["source_uri"]: row for row in table.to_pylist()}


def unchanged(entry: Entry, row: dict[str, Any]) -> bool:
    """Whether a file is as it was when its probe index row was made: same size and ETag (objects), or
    same size and an mtime that was not racy (local files)."""
    if entry.size != row["size_bytes"]:
        return False
    if entry.etag is not None or row.get("etag") is not None:
        return entry.etag == row.get("etag")
    return (
        entry.mtime_ns is not None
        and entry.mtime_ns == row["mtime_ns"]
        and row["mtime_ns"] < row["checked_ns"] - RACY_NS
    )


def split_by_cache(files: Iterable[str], cache: dict[str, dict[str, Any]]) -> CacheSplit:
    """Stat every cached file; reuse the cached probe of those unchanged since (see :func:`unchanged`)."""
    split = CacheSplit([], [], [])
    for uri in files:
        row = cache.get(uri)
        if row is not None:
            entry = file_entry(uri)
            if entry is not None and unchanged(entry, row):
                split.hits.append(probed_from_row(row))
                split.hit_rows.append(row)
                continue
        split.misses.append(uri)
    return split
