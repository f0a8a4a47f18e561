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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.config.settings import IngestConfig
from engine.ingest.locator import REMOTE_READS, is_local_uri
from engine.ingest.probe import PROBE_INDEX_SCHEMA, as_probe_index
from engine.ingest.sources import InputOptions, Source
from engine.store.location import Entry, Where
from engine.store.manifest import Manifest
from engine.store.reader import read_shard
from filters.curation.measures import MEASURES_VERSION

RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class ProbeCache:
    """A probe index and its rows ordered by the object each came from (its container, or the file itself):
    object ``k`` (``objects[uri] == k``) has the rows ``order[bounds[k]:bounds[k + 1]]``. One Python entry
    per object; the rows stay in Arrow, as read."""

    index: pa.Table
    objects: dict[str, int]
    order: np.ndarray
    bounds: np.ndarray

    @classmethod
    def of(cls, index: pa.Table) -> ProbeCache:
        """``index`` (probe index rows, a container's rows in member order) grouped by object, orders kept."""
        index = as_probe_index(index)
        keyed = pa.table({"object": object_column(index), "position": np.arange(index.num_rows)})
        keyed = keyed.sort_by([("object", "ascending"), ("position", "ascending")])
        objects = keyed.column("object").combine_chunks()
        changed = pc.not_equal(objects[1:], objects[:-1]).to_numpy(zero_copy_only=False) if len(objects) > 1 else []
        firsts = np.flatnonzero(np.r_[len(objects) > 0, changed])
        uris = objects.take(pa.array(firsts, pa.int64())).to_pylist()
        order = keyed.column("position").to_numpy()
        return cls(index, {uri: k for k, uri in enumerate(uris)}, order, np.r_[firsts, index.num_rows])

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> ProbeCache:
        return cls.of(pa.Table.from_pylist(rows, schema=PROBE_INDEX_SCHEMA))

    @property
    def rows(self) -> int:
        return self.index.num_rows

    def positions(self, uri: str) -> np.ndarray | None:
        """The index rows of the object ``uri``, in the index's order; None when the index has none."""
        k = self.objects.get(uri)
        return None if k is None else self.order[self.bounds[k] : self.bounds[k + 1]]

    def row(self, position: int) -> dict[str, Any]:
        return self.index.slice(position, 1).to_pylist()[0]


@dataclass
class CacheSplit:
    """Probe index rows reused from the cache (a table), and the sources still to probe."""

    hits: pa.Table
    misses: list[Source]


def probe_key(ingest: IngestConfig, options: InputOptions) -> dict[str, Any]:
    """The settings that decide what probing finds: limits, image extensions, the table columns, and the
    definition of curation's measures (an index of older measures, or of none, is not reused)."""
    return {
        **ingest.limits(),
        "extensions": sorted(ingest.extensions),
        "columns": options.to_dict(),
        "measures": MEASURES_VERSION,
    }


def object_column(index: pa.Table) -> pa.ChunkedArray:
    """The object each probe index row came from: its container, or the file itself."""
    locator = index.column("locator")
    return pc.if_else(pc.is_valid(locator), pc.struct_field(locator, "container"), index.column("source_uri"))


def load_probe_cache(root: Where, previous: Manifest | None, ingest_key: dict[str, Any]) -> ProbeCache | None:
    """The previous version's probe index, if probed under the same ``ingest_key``."""
    if previous is None or previous.probe_index is None or previous.extra.get("ingest") != ingest_key:
        return None
    return ProbeCache.of(read_shard(root, previous.probe_index))


def split_by_cache(sources: Iterable[Source], cache: ProbeCache | None) -> CacheSplit:
    """Reuse the cached rows of every source whose object is unchanged; the others are to probe. Sources
    not listed with a stamp (named by a list or a table) are stated, those in a store a few at a time."""
    sources = list(sources)
    if cache is None:
        return CacheSplit(pa.Table.from_pylist([], schema=PROBE_INDEX_SCHEMA), sources)
    cached = [s for s in sources if s.uri in cache.objects and s.problem is None]
    remote = [s for s in cached if not is_local_uri(s.uri) and s.stamp_from_listing() is None]
    stamps: dict[str, Entry | None] = {}
    if len(remote) > 1:
        with ThreadPoolExecutor(REMOTE_READS) as pool:
            stamps = dict(zip([s.uri for s in remote], pool.map(Source.stamp, remote), strict=True))
    spans: list[np.ndarray] = []
    misses: list[Source] = []
    for source in sources:
        positions = cache.positions(source.uri) if source.problem is None else None
        if positions is not None:
            now = stamps[source.uri] if source.uri in stamps else source.stamp()
            if unchanged(now, cache.row(int(positions[0]))):
                spans.append(positions)
                continue
        misses.append(source)
    taken = np.concatenate(spans) if spans else np.zeros(0, np.int64)
    return CacheSplit(cache.index.take(pa.array(taken, pa.int64())), misses)


def unchanged(now: Entry | None, row: dict[str, Any]) -> bool:
    """Whether an object is as it was when its probe index rows were made: same size and ETag (objects in
    a store), or same size and an mtime that was not racy (local files)."""
    if now is None or now.special is not None or row.get("object_size") != now.size:
        return False
    if now.etag is not None or row.get("etag") is not None:
        return now.etag == row.get("etag")
    mtime = row.get("mtime_ns")
    return now.mtime_ns is not None and now.mtime_ns == mtime and mtime < row["checked_ns"] - RACY_NS
