"""Skipping the re-hash of unchanged sources: the previous version's probe index, by the object probed.

Each version lists a probe index (``probes/*.parquet``) with every probed image, what the object
holding it (the file, or its WebDataset shard or Parquet table) looked like before it was read, and
what probing found. The next run compares each source with that: the same size and the same ETag
(objects in a store: an object's mtime says when it was uploaded, not whether its bytes changed), or
the same size and mtime (local files), and the source's rows are reused instead of reading, hashing
and decoding it again; a container's rows come back all together. As in git's index, an mtime
within ``RACY_NS`` of the moment it was checked is not trusted (the file may have changed again
within the clock's resolution). The cache is used only when the ingest settings
that decide what probing finds are unchanged (:func:`probe_key`); ``--full`` never uses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from engine.config.settings import IngestConfig
from engine.ingest.locator import REMOTE_READS, is_local_uri
from engine.ingest.probe import ProbedFile, probed_from_row
from engine.ingest.sources import InputOptions, Source
from engine.store.location import Entry, Where
from engine.store.manifest import Manifest
from engine.store.reader import read_shard
from filters.curation.measures import MEASURES_VERSION

RACY_NS = 2_000_000_000


@dataclass
class CacheSplit:
    """Probe index rows reused from the cache, and the sources still to probe."""

    hit_rows: list[dict[str, Any]]
    misses: list[Source]

    @property
    def hits(self) -> list[ProbedFile]:
        return [probed_from_row(row) for row in self.hit_rows]


def probe_key(ingest: IngestConfig, options: InputOptions) -> dict[str, Any]:
    """The settings that decide what probing finds: limits, image extensions, the table columns, and the
    definition of curation's measures (an index of older measures, or of none, is not reused)."""
    return {
        **ingest.limits(),
        "extensions": sorted(ingest.extensions),
        "columns": options.to_dict(),
        "measures": MEASURES_VERSION,
    }


def object_of(row: dict[str, Any]) -> str:
    """The object a probe index row came from: its container, or the file itself."""
    locator = row.get("locator")
    return locator["container"] if locator else row["source_uri"]


def load_probe_cache(
    root: Where, previous: Manifest | None, ingest_key: dict[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """Object URI -> its index rows from the previous version, if probed under the same ``ingest_key``."""
    if previous is None or previous.probe_index is None or previous.extra.get("ingest") != ingest_key:
        return {}
    cache: dict[str, list[dict[str, Any]]] = {}
    for row in read_shard(root, previous.probe_index).to_pylist():
        cache.setdefault(object_of(row), []).append(row)
    return cache


def split_by_cache(sources: Iterable[Source], cache: dict[str, list[dict[str, Any]]]) -> CacheSplit:
    """Reuse the cached rows of every source whose object is unchanged; the others are to probe. Sources
    not listed with a stamp (named by a list or a table) are stated, those in a store a few at a time."""
    sources = list(sources)
    cached = [s for s in sources if s.uri in cache and s.problem is None]
    remote = [s for s in cached if not is_local_uri(s.uri) and s.stamp_from_listing() is None]
    stamps: dict[str, Entry | None] = {}
    if len(remote) > 1:
        with ThreadPoolExecutor(REMOTE_READS) as pool:
            stamps = dict(zip([s.uri for s in remote], pool.map(Source.stamp, remote), strict=True))
    split = CacheSplit([], [])
    for source in sources:
        rows = cache.get(source.uri)
        now = stamps[source.uri] if source.uri in stamps else source.stamp() if rows else None
        if rows and source.problem is None and unchanged(now, rows[0]):
            split.hit_rows.extend(rows)
        else:
            split.misses.append(source)
    return split


def unchanged(now: Entry | None, row: dict[str, Any]) -> bool:
    """Whether an object is as it was when its probe index rows were made: same size and ETag (objects in
    a store), or same size and an mtime that was not racy (local files)."""
    if now is None or now.special is not None or row.get("object_size") != now.size:
        return False
    if now.etag is not None or row.get("etag") is not None:
        return now.etag == row.get("etag")
    mtime = row.get("mtime_ns")
    return now.mtime_ns is not None and now.mtime_ns == mtime and mtime < row["checked_ns"] - RACY_NS
